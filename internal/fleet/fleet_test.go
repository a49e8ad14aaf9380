package fleet

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairn-os/cairn/internal/nodeapi"
)

func TestGenerateOnceAndLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "fleet")
	f, err := Generate(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Generate(dir, time.Now()); err == nil || !strings.Contains(err.Error(), "will not replace them") {
		t.Errorf("second generate: %v", err)
	}
	back, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if back.PublicKey() != f.PublicKey() || !back.SignKey.Equal(f.SignKey) {
		t.Error("the keys read back are not the keys made")
	}
	if _, err := Load(filepath.Join(t.TempDir(), "none")); err == nil || !strings.Contains(err.Error(), "cairn keys generate") {
		t.Errorf("no keys: %v", err)
	}
}

// TestNodeAPITLS: the admin of a fleet gets through to its nodes; another
// fleet's admin does not, and the admin does not talk to another fleet's
// node.
func TestNodeAPITLS(t *testing.T) {
	now := time.Now()
	mine, _ := Generate(filepath.Join(t.TempDir(), "a"), now)
	theirs, _ := Generate(filepath.Join(t.TempDir(), "b"), now)
	serve := func(f *Fleet) *httptest.Server {
		conf, err := nodeapi.ServerTLS(f.CA.CertPEM, f.NodeCert, f.NodeKey)
		if err != nil {
			t.Fatal(err)
		}
		s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
		s.TLS = conf
		s.StartTLS()
		t.Cleanup(s.Close)
		return s
	}
	get := func(admin *Fleet, s *httptest.Server) error {
		conf, err := admin.AdminTLS()
		if err != nil {
			t.Fatal(err)
		}
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: conf}}
		resp, err := c.Get(s.URL)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	node := serve(mine)
	if err := get(mine, node); err != nil {
		t.Errorf("the fleet's admin: %v", err)
	}
	if err := get(theirs, node); err == nil {
		t.Error("another fleet's admin got in")
	}
	if err := get(mine, serve(theirs)); err == nil || !strings.Contains(err.Error(), "not from this fleet's CA") {
		t.Errorf("a node of another fleet: %v", err)
	}
}
