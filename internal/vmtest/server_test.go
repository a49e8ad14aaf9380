package vmtest

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairn-os/cairn/boards"
	"github.com/cairn-os/cairn/cluster/identity"
	"github.com/cairn-os/cairn/internal/qemu"
	"github.com/cairn-os/cairn/internal/registrytest"
)

// serverTimeout bounds the control plane's start under software emulation.
const serverTimeout = 20 * time.Minute

// TestServerControlPlane boots a cluster.role: server image on arm64 and
// talks to its API through a forwarded port with the kubeconfig the build
// wrote: version, authentication, objects stored, controllers at work. The
// server is also a node: it becomes Ready and runs a Deployment of an image
// the test builds and bakes in through cluster.images, behind a Service
// that another pod reaches by its DNS name; kubectl logs and exec work. After a power cut
// the objects are still there and the Deployment serves again. Then it
// reads the data partition the VM wrote: a Secret is stored encrypted, a
// ConfigMap is not.
func TestServerControlPlane(t *testing.T) {
	need(t, "qemu-system-aarch64", "sfdisk")
	t.Setenv("CAIRN_CLUSTERS", t.TempDir())
	dir := t.TempDir()
	helloImage(t, "arm64", filepath.Join(dir, "hello.tar"))
	os.WriteFile(filepath.Join(dir, "site.yaml"), []byte(siteManifest), 0o644)
	// A registry holds a two-architecture hello image; the build pulls the
	// arm64 one, and the node never sees the registry.
	reg := registrytest.Start(t)
	reg.Index("cairn/hello", "2",
		reg.Image("cairn/hello", "", "amd64", []string{"/hello"}, registrytest.File{Path: "hello", Mode: 0o755, Data: []byte("not for arm64")}),
		reg.Image("cairn/hello", "", "arm64", []string{"/hello"}, registrytest.File{Path: "hello", Mode: 0o755, Data: helloBinary(t, "arm64")}))
	pulled := reg.Host + "/cairn/hello:2"
	img := buildImage(t, "qemu-arm64", "apiVersion: cairn.dev/v1alpha1\nkind: Node\nhostname: srv\ncluster:\n  name: vmtest\n  role: server\n  images: [hello.tar, "+pulled+"]\n  manifests: [site.yaml]\n", dir)
	reg.Stop()
	if err := os.Truncate(img, 3<<30); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	api := newKubeClient(t, filepath.Join(dir, "kubeconfig"), fmt.Sprintf("https://127.0.0.1:%d", port))
	board, _ := boards.Get("qemu-arm64")
	boot := func() *qemu.VM {
		vm, err := qemu.Start(qemu.Options{Board: board, Image: img, Forward: []string{fmt.Sprintf("%d:6443", port)}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(vm.Kill)
		if _, err := vm.WaitFor("msg=\"apiserver ready\"", 0, serverTimeout); err != nil {
			t.Fatalf("%v\nconsole:\n%s", err, vm.Output())
		}
		t.Logf("apiserver ready after %s", vm.Since().Round(time.Second))
		// init sees cairnd's health (what the A/B commit will wait for).
		if _, err := vm.WaitFor("health: cluster healthy status=apiserver=ready", 0, time.Minute); err != nil {
			t.Errorf("%v\nconsole:\n%s", err, vm.Output())
		}
		if _, err := vm.WaitFor("health: cluster healthy status=apiserver=ready,node=ready", 0, serverTimeout); err != nil {
			t.Fatalf("the node did not become Ready: %v\nconsole:\n%s", err, vm.Output())
		}
		t.Logf("node ready after %s", vm.Since().Round(time.Second))
		return vm
	}
	vm := boot()
	kubectl := kubectlFor(t, filepath.Join(dir, "kubeconfig"), api.base)

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

	checkManifests(t, vm, kubectl)

	// The node runs workloads from the baked image, with no registry.
	kubectl.must("apply", "-f", writeManifest(t, dir, helloManifest))
	if out, err := kubectl.run("rollout", "status", "deployment/hello", "--timeout=10m"); err != nil {
		t.Fatalf("deployment: %v\n%s\nconsole:\n%s", err, out, vm.Output())
	}
	// Another pod reaches the Service by its DNS name (cluster DNS).
	client := "client-1"
	runClient(t, kubectl, client, pulled, "http://hello.default.svc.cluster.local/", "hello from hello-") // the image the build pulled
	if out := kubectl.logs(client, "hello from hello-"); !strings.Contains(out, "hello from hello-") {
		t.Errorf("the client pod did not reach the Service: logs %q", out)
	}
	if out := kubectl.must("logs", "deployment/hello"); !strings.Contains(out, "hello: serving on :8080") || !strings.Contains(out, "GET /") {
		t.Errorf("kubectl logs of the server: %q", out)
	}
	if out := kubectl.must("exec", "deployment/hello", "--", "/hello", "get", "http://127.0.0.1:8080/exec"); !strings.Contains(out, "hello from hello-") {
		t.Errorf("kubectl exec: %q", out)
	}

	// Power cut; the objects live on the data partition.
	before := helloPods(kubectl)
	vm.Kill()
	vm = boot()
	var cm struct{ Data map[string]string }
	api.json(t, "GET", "/api/v1/namespaces/default/configmaps/kept", nil, 200, &cm)
	if cm.Data["v"] != "plain-configmap-value-4711" {
		t.Errorf("config map after the power cut: %v", cm.Data)
	}
	// The Deployment's status is the one from before the cut until the
	// kubelet reports again, so rollout status says nothing yet: wait for
	// the restarted pod to be the Service's one ready endpoint.
	eventually(t, 10*time.Minute, "the hello pod to serve again after the power cut", func() bool {
		now := helloPods(kubectl)
		for _, c := range now.containers {
			if slices.Contains(before.containers, c) {
				return false
			}
		}
		return len(now.ready) == 1 && slices.Equal(now.endpoints, now.ready)
	})
	// The short name, through the search path. The pod succeeds only if the
	// answer came from the hello pod; it logs where the answer came from.
	runClient(t, kubectl, "client-2", "cairn.test/hello:1", "http://hello/", "hello from hello-")
	vm.Kill()

	_, parts := partitions(t, img)
	dataPart := extract(t, img, parts[3])
	data, err := os.ReadFile(dataPart)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte("plain-configmap-value-4711")) {
		t.Error("the config map is not in the datastore on the data partition")
	}
	if bytes.Contains(data, []byte("secret-value-must-not-be-on-disk-0815")) {
		t.Error("the secret is stored in plain text")
	}
	if !bytes.Contains(data, []byte("k8s:enc:secretbox:v1:cairn-1")) {
		t.Error("no secretbox-encrypted object in the datastore")
	}
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
func checkManifests(t *testing.T, vm *qemu.VM, kubectl kubectl) {
	t.Helper()
	if _, err := vm.WaitFor(`msg="manifests applied" objects=3`, 0, 5*time.Minute); err != nil {
		t.Errorf("%v\nconsole:\n%s", err, vm.Output())
	}
	if out := kubectl.must("get", "configmap", "settings", "-n", "site", "-o", `jsonpath={.data.mode} {.metadata.labels.app\.kubernetes\.io/managed-by}`); out != "edge cairn" {
		t.Errorf("applied config map: %q, want \"edge cairn\"", out)
	}
	kubectl.must("get", "configmap", "site-defaults", "-n", "default")
	kubectl.must("delete", "configmap", "settings", "-n", "site")
	eventually(t, 4*time.Minute, "the deleted config map to come back", func() bool {
		_, err := kubectl.run("get", "configmap", "settings", "-n", "site")
		return err == nil
	})
	// As if an update had removed its manifest: the server's record lists
	// an object it applied (its label, its field manager), and the
	// manifests no longer have it. A bystander made by hand and slipped into
	// the record is not the server's to delete.
	kubectl.must("apply", "--server-side", "--field-manager=cairn", "-f", writeManifest(t, t.TempDir(), retiredManifest))
	kubectl.must("create", "configmap", "bystander", "-n", "default")
	eventually(t, 4*time.Minute, "the retired config map to be deleted", func() bool {
		if _, err := kubectl.run("get", "configmap", "retired", "-n", "default"); err != nil {
			return true
		}
		objs := kubectl.must("get", "configmap", "cairn-manifests", "-n", "kube-system", "-o", "jsonpath={.data.objects}")
		if !strings.Contains(objs, "v1 ConfigMap default retired") {
			patch, _ := json.Marshal(map[string]any{"data": map[string]string{"objects": objs + "\nv1 ConfigMap default retired\nv1 ConfigMap default bystander\n"}})
			kubectl.must("patch", "configmap", "cairn-manifests", "-n", "kube-system", "--type=merge", "-p", string(patch))
		}
		return false
	})
	out := vm.Output()
	if !strings.Contains(out, `msg="manifest object deleted: no manifest has it any more" object="v1 ConfigMap default retired"`) {
		t.Errorf("the server did not log the deletion\nconsole:\n%s", out)
	}
	if !strings.Contains(out, `msg="manifest object left alone: the record lists it, but cairn did not apply it" object="v1 ConfigMap default bystander"`) {
		t.Errorf("the server did not say it left the bystander alone\nconsole:\n%s", out)
	}
	kubectl.must("get", "configmap", "bystander", "-n", "default")
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
	req, _ := http.NewRequest(method, k.base+path, r)
	req.Header.Set("Content-Type", "application/json")
	resp, err := k.admin.Do(req)
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

// helloState is what serves the hello Service: its pods' container IDs,
// the IPs of its ready pods and of its ready endpoints.
type helloState struct{ containers, ready, endpoints []string }

func helloPods(k kubectl) helloState {
	var st helloState
	pods, _ := k.run("get", "pods", "-l", "app=hello", "-o",
		`jsonpath={range .items[*]}{.status.containerStatuses[0].containerID}|{.status.containerStatuses[0].ready}|{.status.podIP}{"\n"}{end}`)
	for line := range strings.Lines(pods) {
		f := strings.Split(strings.TrimSpace(line), "|")
		if len(f) != 3 {
			continue
		}
		st.containers = append(st.containers, f[0])
		if f[1] == "true" && f[2] != "" {
			st.ready = append(st.ready, f[2])
		}
	}
	eps, _ := k.run("get", "endpointslices", "-l", "kubernetes.io/service-name=hello", "-o",
		`jsonpath={range .items[*].endpoints[*]}{.addresses[0]} {.conditions.ready}{"\n"}{end}`)
	for line := range strings.Lines(eps) {
		if f := strings.Fields(line); len(f) == 2 && f[1] == "true" {
			st.endpoints = append(st.endpoints, f[0])
		}
	}
	slices.Sort(st.ready)
	slices.Sort(st.endpoints)
	return st
}
