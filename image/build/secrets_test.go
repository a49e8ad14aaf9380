package build

import (
	"bytes"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cairn-os/cairn/boards"
	"github.com/cairn-os/cairn/cluster/identity"
	"github.com/cairn-os/cairn/configs"
)

// TestClusterSecretsPerRole checks what of the cluster's secrets each role's
// image carries: a server the whole bundle, with the kubelet-serving CA; an
// agent its token alone.
func TestClusterSecretsPerRole(t *testing.T) {
	t.Setenv("CAIRN_CLUSTERS", t.TempDir())
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	epoch := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	server := &configs.Config{Node: configs.Node{Cluster: &configs.Cluster{Name: "lab", Role: "server"}}}
	agent := &configs.Config{Node: configs.Node{Cluster: &configs.Cluster{Name: "lab", Role: "agent", Server: "https://10.0.2.2:6443"}}}
	srv, err := clusterSecrets(log, server, epoch)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{identity.FileKubeletServingCA, identity.FileKubeletServingKey, identity.FileServerCAKey, identity.FileToken} {
		if len(srv.files[f]) == 0 {
			t.Errorf("the server image lacks %s", f)
		}
	}
	agt, err := clusterSecrets(log, agent, epoch)
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(maps.Keys(agt.files)); !slices.Equal(got, []string{identity.FileToken}) {
		t.Errorf("the agent image carries %v, want the token alone", got)
	}
	// After a rotation, a server image carries the previous secret too,
	// and an agent image the new token.
	b, err := identity.RotateSecret(srv.bundle.Dir, epoch, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if srv, _ = clusterSecrets(log, server, epoch); len(srv.files[identity.FilePreviousSecret]) == 0 {
		t.Error("the server image of a rotated cluster lacks the previous join secret")
	}
	if agt, _ = clusterSecrets(log, agent, epoch); string(agt.files[identity.FileToken]) != b.Token()+"\n" {
		t.Errorf("the agent image of a rotated cluster carries the token %s", agt.files[identity.FileToken])
	}
}

// TestKubeconfigOfAnotherCluster builds the servers of two clusters into
// one folder: the first one's kubeconfig stays, the second gets its own.
func TestKubeconfigOfAnotherCluster(t *testing.T) {
	t.Setenv("CAIRN_CLUSTERS", t.TempDir())
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	board, _ := boards.Get("qemu-arm64")
	out := filepath.Join(t.TempDir(), "server.img")
	kubeconfigs := map[string]string{}
	for _, name := range []string{"lab", "shop", "lab"} {
		cfg := &configs.Config{Node: configs.Node{Cluster: &configs.Cluster{Name: name, Role: "server"}}}
		ci, err := clusterSecrets(log, cfg, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		o := &Options{Config: cfg, Board: board, Output: out, secrets: ci}
		path, err := o.WriteKubeconfig()
		if err != nil {
			t.Fatal(err)
		}
		if kc, err := identity.ParseKubeconfig(must(os.ReadFile(path))); err != nil || !bytes.Equal(kc.CAPEM, ci.bundle.ServerCA.CertPEM) {
			t.Errorf("%s: %s is not this cluster's kubeconfig (%v)", name, path, err)
		}
		kubeconfigs[name] = filepath.Base(path)
	}
	if kubeconfigs["lab"] != "kubeconfig" || kubeconfigs["shop"] != "shop.kubeconfig" {
		t.Errorf("kubeconfigs: %v", kubeconfigs)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// The admin kubeconfig reaches a QEMU board through cairn vm's forward
// even when the node has a static address (on a LAN of QEMU's), and a
// board's node at its address, else its name.
func TestServerHost(t *testing.T) {
	static, _, err := configs.Parse("static.yaml", []byte("apiVersion: cairn.dev/v1alpha1\nkind: Node\nhostname: srv\nnetwork:\n  interfaces:\n    - name: eth1\n      addresses: [192.168.77.1/24]\n"))
	if err != nil {
		t.Fatal(err)
	}
	named, _, err := configs.Parse("named.yaml", []byte("apiVersion: cairn.dev/v1alpha1\nkind: Node\nhostname: srv\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cfg   *configs.Config
		board string
		want  string
	}{
		{static, "qemu-arm64", "127.0.0.1"},
		{static, "rpi4", "192.168.77.1"},
		{named, "rpi4", "srv"},
		{&configs.Config{}, "rpi4", "127.0.0.1"},
	} {
		b, err := boards.Get(tc.board)
		if err != nil {
			t.Fatal(err)
		}
		if got := serverHost(tc.cfg, b); got != tc.want {
			t.Errorf("%s on %s: %s, want %s", tc.cfg.Hostname, tc.board, got, tc.want)
		}
	}
}
