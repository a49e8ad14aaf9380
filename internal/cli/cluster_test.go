package cli

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-os/cairn/cluster/identity"
)

// newCluster makes the secrets of cluster lab in a folder of its own, as
// a first build would.
func newCluster(t *testing.T) *identity.Bundle {
	t.Helper()
	t.Setenv("CAIRN_CLUSTERS", t.TempDir())
	dir, _ := identity.DefaultDir("lab")
	b, _, err := identity.LoadOrCreate(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRotateToken checks that cairn cluster rotate-token gives the cluster
// a new token, keeps the old one accepted for --grace and says what to
// rebuild.
func TestRotateToken(t *testing.T) {
	old := newCluster(t)
	out, err := run("cluster", "rotate-token", "lab", "--grace", "48h")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	b, err := identity.Load(old.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if b.Token() == old.Token() || b.PreviousSecret != old.Secret {
		t.Fatalf("after the rotation: token %s, previous secret %q", b.Token(), b.PreviousSecret)
	}
	if err := b.CheckSecret(old.Secret, time.Now().Add(47*time.Hour)); err != nil {
		t.Errorf("the old secret within the grace: %v", err)
	}
	if err := b.CheckSecret(old.Secret, time.Now().Add(49*time.Hour)); err == nil {
		t.Error("the old secret is accepted after the grace")
	}
	for _, want := range []string{"new join token", filepath.Join(old.Dir, identity.FileToken), b.PreviousUntil.UTC().Format(time.RFC3339),
		"rebuild the server images", "rebuild the agent images", "last 30 days"} {
		if !strings.Contains(out, want) {
			t.Errorf("the output does not say %q:\n%s", want, out)
		}
	}
	if out, _ := run("cluster", "rotate-token", "lab"); !strings.Contains(out, "the token before the old one") {
		t.Errorf("a second rotation within the grace does not say the first token goes:\n%s", out)
	}
	for _, args := range [][]string{{"cluster", "rotate-token", "nosuch"}, {"cluster", "rotate-token", "lab", "--grace", "-1h"}} {
		if _, err := run(args...); Code(err) != 2 {
			t.Errorf("%v: code %d (%v), want 2", args, Code(err), err)
		}
	}
}

// standIn stands in for a cluster's apiserver: it takes the cluster's
// administrators only, keeps the Secrets posted to kube-system, and
// answers 409 to a second one of the same name.
type standIn struct {
	url    string
	mu     sync.Mutex
	posted map[string]map[string]any
	admins []*x509.Certificate
}

func apiStandIn(t *testing.T, b *identity.Bundle) *standIn {
	t.Helper()
	certPEM, keyPEM, _ := b.ServerCA.Issue(identity.Leaf{CommonName: "kube-apiserver", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true}, time.Now())
	cert, _ := tls.X509KeyPair(certPEM, keyPEM)
	clients := x509.NewCertPool()
	clients.AddCert(b.ClientCA.Cert)
	api := &standIn{posted: map[string]map[string]any{}}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(api.serve))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clients}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshakes another cluster's client fails
	srv.StartTLS()
	t.Cleanup(srv.Close)
	api.url = srv.URL
	return api
}

func (api *standIn) serve(w http.ResponseWriter, r *http.Request) {
	api.mu.Lock()
	defer api.mu.Unlock()
	api.admins = append(api.admins, r.TLS.PeerCertificates[0])
	var s map[string]any
	if r.Method != "POST" || r.URL.Path != "/api/v1/namespaces/kube-system/secrets" || json.NewDecoder(r.Body).Decode(&s) != nil {
		http.Error(w, `{"kind":"Status","message":"not what cairn sends"}`, http.StatusBadRequest)
		return
	}
	name, _ := s["metadata"].(map[string]any)["name"].(string)
	if _, ok := api.posted[name]; ok {
		http.Error(w, `{"kind":"Status","message":"already exists"}`, http.StatusConflict)
		return
	}
	api.posted[name] = s
	w.WriteHeader(http.StatusCreated)
}

// TestRefuse checks that cairn cluster refuse makes the node's refusal
// Secret in kube-system as a short-lived administrator, says how to evict
// the node and how to let it back, and takes a second refusal calmly.
func TestRefuse(t *testing.T) {
	b := newCluster(t)
	api := apiStandIn(t, b)
	out, err := run("cluster", "refuse", "lab", "edge-7", "--server", api.url)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	api.mu.Lock()
	s, admin := api.posted["edge-7.node-refused.cairn"], api.admins[0]
	api.mu.Unlock()
	meta, _ := s["metadata"].(map[string]any)
	labels, _ := meta["labels"].(map[string]any)
	if s == nil || meta["namespace"] != "kube-system" || labels["cairn.dev/refused-node"] != "edge-7" || s["immutable"] != true {
		t.Fatalf("the API got %v", s)
	}
	if o := admin.Subject.Organization; len(o) != 1 || o[0] != "system:masters" || admin.NotAfter.After(time.Now().Add(time.Hour)) {
		t.Errorf("the command authenticated as %v until %v; want a system:masters certificate of an hour at most", admin.Subject, admin.NotAfter)
	}
	for _, want := range []string{"node edge-7 is refused", "at most 30 days", "kubectl taint node edge-7 cairn.dev/refused=true:NoExecute",
		"kubectl delete node edge-7 && kubectl -n kube-system delete secret edge-7.node-password.cairn edge-7.node-refused.cairn"} {
		if !strings.Contains(out, want) {
			t.Errorf("the output does not say %q:\n%s", want, out)
		}
	}
	if out, err := run("cluster", "refuse", "lab", "edge-7", "--server", api.url); err != nil || !strings.Contains(out, "refused already") {
		t.Errorf("a second refusal: %v\n%s", err, out)
	}
	for _, args := range [][]string{{"cluster", "refuse", "lab", "Edge_7", "--server", api.url}, {"cluster", "refuse", "lab", "edge-7"}, {"cluster", "refuse", "nosuch", "edge-7", "--server", api.url}} {
		if _, err := run(args...); Code(err) != 2 {
			t.Errorf("%v: code %d (%v), want 2", args, Code(err), err)
		}
	}
	// Another cluster's API is not trusted with the administrator's certificate.
	other, _, _ := identity.LoadOrCreate(filepath.Join(t.TempDir(), "other"), time.Now())
	if _, err := run("cluster", "refuse", "lab", "edge-8", "--server", apiStandIn(t, other).url); err == nil || !strings.Contains(err.Error(), "--server") {
		t.Errorf("against another cluster's API: %v", err)
	}
}
