package vmtest

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairn-os/cairn/cluster/identity"
)

// serverTimeout bounds the control plane's start under software emulation.
const serverTimeout = 20 * time.Minute

// checkControlPlane checks what a client sees of the server's API: its
// version, authentication, objects stored, the controller manager at work,
// and Pod Security admission. It leaves a ConfigMap and a Secret that
// TestCluster looks for after a power cut and on the data partition.
func checkControlPlane(t *testing.T, vm console, api *kubeClient) {
	t.Helper()
	var version struct{ GitVersion string }
	api.json(t, "GET", "/version", nil, 200, &version)
	if version.GitVersion != "v1.37.2" {
		t.Errorf("server version %q", version.GitVersion)
	}
	anon, _ := http.NewRequest("GET", api.base+"/api/v1/namespaces", nil)
	if resp, err := api.anonymous.Do(anon); err != nil || resp.StatusCode != 401 {
		t.Errorf("anonymous request: %v %v, want 401", resp, err)
	}
	api.json(t, "POST", "/api/v1/namespaces/default/configmaps", map[string]any{
		"metadata": map[string]any{"name": "kept"}, "data": map[string]string{"v": "plain-configmap-value-4711"}}, 201, nil)
	api.json(t, "POST", "/api/v1/namespaces/default/secrets", map[string]any{
		"metadata": map[string]any{"name": "hidden"}, "stringData": map[string]string{"v": "secret-value-must-not-be-on-disk-0815"}}, 201, nil)
	// The controller manager runs: it gives every namespace a default
	// service account and the root CA config map.
	deadline := time.Now().Add(10 * time.Minute)
	for api.status(t, "/api/v1/namespaces/default/serviceaccounts/default") != 200 {
		if time.Now().After(deadline) {
			t.Fatalf("no default service account: the controller manager is not working\nconsole:\n%s", vm.Output())
		}
		time.Sleep(5 * time.Second)
	}
	if api.status(t, "/api/v1/namespaces/default/configmaps/kube-root-ca.crt") != 200 {
		t.Error("no kube-root-ca.crt config map")
	}
	// Pod Security admission enforces baseline: a privileged pod is refused.
	api.json(t, "POST", "/api/v1/namespaces/default/pods", map[string]any{
		"metadata": map[string]any{"name": "priv"},
		"spec":     map[string]any{"containers": []any{map[string]any{"name": "c", "image": "x", "securityContext": map[string]any{"privileged": true}}}}}, 403, nil)
}

// siteManifest is the test's cluster.manifests file.
const siteManifest = `apiVersion: v1
kind: Namespace
metadata: {name: site}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: site}
data: {mode: edge}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: site-defaults}
data: {zone: a}
`

// checkManifests: the config's manifests are applied at start, an object
// deleted by hand comes back, and an object the server applied before but
// no manifest has any more is deleted, while one it did not apply is not.
// It makes the changes at once and returns the check of their outcome,
// which the server's next sync (SyncInterval) brings: the caller runs it
// later, with other work done in between rather than a wait.
func checkManifests(t *testing.T, vm console, kubectl kubectl, api *kubeClient) (check func()) {
	t.Helper()
	if _, err := vm.WaitFor(`msg="manifests applied" objects=3`, 0, 5*time.Minute); err != nil {
		t.Errorf("%v\nconsole:\n%s", err, vm.Output())
	}
	// Reads go to the API directly (kubectl is emulated, seconds a run);
	// the writes are kubectl's.
	var settings struct {
		Metadata struct{ Labels map[string]string }
		Data     map[string]string
	}
	api.json(t, "GET", "/api/v1/namespaces/site/configmaps/settings", nil, 200, &settings)
	if settings.Data["mode"] != "edge" || settings.Metadata.Labels["app.kubernetes.io/managed-by"] != "cairn" {
		t.Errorf("applied config map: data %v, labels %v; want mode edge, managed by cairn", settings.Data, settings.Metadata.Labels)
	}
	api.json(t, "GET", "/api/v1/namespaces/default/configmaps/site-defaults", nil, 200, nil)
	kubectl.must("delete", "configmap", "settings", "-n", "site")
	deleted := time.Now()
	// As if an update had removed its manifest: the server's record lists
	// an object it applied (its label, its field manager), and the
	// manifests no longer have it. A bystander made by hand and slipped into
	// the record is not the server's to delete.
	kubectl.must("apply", "--server-side", "--field-manager=cairn", "-f", writeManifest(t, t.TempDir(), retiredManifest))
	kubectl.must("create", "configmap", "bystander", "-n", "default")
	// recorded lists the two in the server's record, unless it has them.
	recorded := func() {
		var record struct{ Data map[string]string }
		api.json(t, "GET", "/api/v1/namespaces/kube-system/configmaps/cairn-manifests", nil, 200, &record)
		if objs := record.Data["objects"]; !strings.Contains(objs, "v1 ConfigMap default retired") {
			patch, _ := json.Marshal(map[string]any{"data": map[string]string{"objects": objs + "\nv1 ConfigMap default retired\nv1 ConfigMap default bystander\n"}})
			kubectl.must("patch", "configmap", "cairn-manifests", "-n", "kube-system", "--type=merge", "-p", string(patch))
		}
	}
	recorded()
	return func() {
		t.Helper()
		eventually(t, 4*time.Minute, "the deleted config map to come back", func() bool {
			return api.status(t, "/api/v1/namespaces/site/configmaps/settings") == 200
		})
		var back struct {
			Metadata struct{ CreationTimestamp time.Time }
		}
		api.json(t, "GET", "/api/v1/namespaces/site/configmaps/settings", nil, 200, &back)
		if after := back.Metadata.CreationTimestamp.Sub(deleted); after > 4*time.Minute {
			t.Errorf("the deleted config map came back %s after, want within 4m (the server applies its manifests every minute)", after.Round(time.Second))
		}
		eventually(t, 4*time.Minute, "the retired config map to be deleted", func() bool {
			if api.status(t, "/api/v1/namespaces/default/configmaps/retired") == 404 {
				return true
			}
			recorded()
			return false
		})
		out := vm.Output()
		if !strings.Contains(out, `msg="manifest object deleted: no manifest has it any more" object="v1 ConfigMap default retired"`) {
			t.Errorf("the server did not log the deletion\nconsole:\n%s", out)
		}
		if !strings.Contains(out, `msg="manifest object left alone: the record lists it, but cairn did not apply it" object="v1 ConfigMap default bystander"`) {
			t.Errorf("the server did not say it left the bystander alone\nconsole:\n%s", out)
		}
		api.json(t, "GET", "/api/v1/namespaces/default/configmaps/bystander", nil, 200, nil)
	}
}

const retiredManifest = `apiVersion: v1
kind: ConfigMap
metadata:
  name: retired
  namespace: default
  labels: {app.kubernetes.io/managed-by: cairn}
data: {was: applied}
`

// eventually polls cond every 5 s until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(5 * time.Second) {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", timeout, what)
		}
	}
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// kubeClient speaks to the API with a kubeconfig's credentials.
type kubeClient struct {
	base             string
	admin, anonymous *http.Client
}

func newKubeClient(t *testing.T, kubeconfig, base string) *kubeClient {
	t.Helper()
	raw, err := os.ReadFile(kubeconfig)
	if err != nil {
		t.Fatalf("the build wrote no kubeconfig: %v", err)
	}
	c, err := identity.ParseKubeconfig(raw)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := c.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	anon := tc.Clone()
	anon.Certificates = nil
	mk := func(tc *tls.Config) *http.Client {
		return &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: tc}}
	}
	return &kubeClient{base: base, admin: mk(tc), anonymous: mk(anon)}
}

func (k *kubeClient) status(t *testing.T, path string) int {
	resp, err := k.admin.Get(k.base + path)
	if err != nil {
		t.Logf("GET %s: %v", path, err)
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (k *kubeClient) json(t *testing.T, method, path string, body any, want int, out any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	resp, err := k.do(method, path, r)
	// A read may meet a connection that the forwarder dropped (a
	// restarted server, a reset kept-alive socket): ask again, a few times.
	for try := 1; err != nil && method == "GET" && try < 4; try++ {
		t.Logf("%s %s: %v; asking again", method, path, err)
		time.Sleep(3 * time.Second)
		resp, err = k.do(method, path, nil)
	}
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %s, want %d: %s", method, path, resp.Status, want, strings.TrimSpace(string(b)))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

// text is a GET's body, whatever its status (a pod's log, say).
func (k *kubeClient) text(t *testing.T, path string) string {
	resp, err := k.do("GET", path, nil)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func (k *kubeClient) do(method, path string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequest(method, k.base+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	return k.admin.Do(req)
}

// helloState is what serves the hello Service: its pods' container IDs,
// the IPs of its ready pods and of its ready endpoints.
type helloState struct{ containers, ready, endpoints []string }

// helloPods asks the API directly, not through kubectl: it is polled, and
// each kubectl run costs seconds of emulated CPU beside the VMs.
func helloPods(t *testing.T, api *kubeClient) helloState {
	var st helloState
	var pods struct {
		Items []struct {
			Status struct {
				PodIP             string
				ContainerStatuses []struct {
					ContainerID string
					Ready       bool
				}
			}
		}
	}
	api.json(t, "GET", "/api/v1/namespaces/default/pods?labelSelector=app%3Dhello", nil, 200, &pods)
	for _, p := range pods.Items {
		if len(p.Status.ContainerStatuses) == 0 {
			continue
		}
		c := p.Status.ContainerStatuses[0]
		st.containers = append(st.containers, c.ContainerID)
		if c.Ready && p.Status.PodIP != "" {
			st.ready = append(st.ready, p.Status.PodIP)
		}
	}
	var eps struct {
		Items []struct {
			Endpoints []struct {
				Addresses  []string
				Conditions struct{ Ready *bool }
			}
		}
	}
	api.json(t, "GET", "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dhello", nil, 200, &eps)
	for _, s := range eps.Items {
		for _, e := range s.Endpoints {
			if len(e.Addresses) > 0 && e.Conditions.Ready != nil && *e.Conditions.Ready {
				st.endpoints = append(st.endpoints, e.Addresses[0])
			}
		}
	}
	slices.Sort(st.ready)
	slices.Sort(st.endpoints)
	return st
}
