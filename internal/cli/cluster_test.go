package cli

import (
	"io"
	"log/slog"
	"maps"
	"slices"
	"testing"
	"time"

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
	srv, err := clusterSecrets(log, &configs.Config{Node: configs.Node{Cluster: &configs.Cluster{Name: "lab", Role: "server"}}}, epoch)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{identity.FileKubeletServingCA, identity.FileKubeletServingKey, identity.FileServerCAKey, identity.FileToken} {
		if len(srv.files[f]) == 0 {
			t.Errorf("the server image lacks %s", f)
		}
	}
	agt, err := clusterSecrets(log, &configs.Config{Node: configs.Node{Cluster: &configs.Cluster{Name: "lab", Role: "agent", Server: "https://10.0.2.2:6443"}}}, epoch)
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(maps.Keys(agt.files)); !slices.Equal(got, []string{identity.FileToken}) {
		t.Errorf("the agent image carries %v, want the token alone", got)
	}
}
