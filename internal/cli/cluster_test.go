package cli

import (
	"path/filepath"
	"strings"
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
