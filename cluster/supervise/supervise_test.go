package supervise

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestExtraArgsOverrideDefaults(t *testing.T) {
	got := Flags(map[string]string{"v": "0", "profiling": "false"}, []string{"--v=4", "feature-gates=X=true"})
	want := []string{"--feature-gates=X=true", "--profiling=false", "--v=4"}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestUpstreamProgramReplacesTheBuiltIn(t *testing.T) {
	dir := t.TempDir()
	old := UpstreamDir
	UpstreamDir = dir
	t.Cleanup(func() { UpstreamDir = old })
	ran := filepath.Join(dir, "ran")
	os.WriteFile(filepath.Join(dir, "etcd"), []byte("#!/bin/sh\necho \"$* $CAIRN_TEST GOGC=$GOGC\" > "+ran+"\nexec sleep 60\n"), 0o755)
	if Upstream("kubelet") != "" || Upstream("etcd") != filepath.Join(dir, "etcd") {
		t.Fatalf("Upstream: kubelet %q, etcd %q", Upstream("kubelet"), Upstream("etcd"))
	}
	// self would fail at once: the upstream program must be what runs.
	got := runUntil(t, "/bin/false", Component{Name: "etcd", Args: []string{"--a=1"}, Env: []string{"CAIRN_TEST=yes"}}, ran)
	if string(got) != "--a=1 yes GOGC=\n" {
		t.Errorf("the upstream program ran with %q, want its arguments and environment, and Go's default GC target", got)
	}
}

func TestBuiltInComponentsGetTheGCTarget(t *testing.T) {
	if _, set := os.LookupEnv("GOGC"); set {
		t.Skip("GOGC is set, and wins")
	}
	dir := t.TempDir()
	ran := filepath.Join(dir, "ran")
	self := filepath.Join(dir, "cairnd")
	os.WriteFile(self, []byte("#!/bin/sh\necho \"$* GOGC=$GOGC\" > "+ran+"\nexec sleep 60\n"), 0o755)
	got := runUntil(t, self, Component{Name: "kubelet", Args: []string{"--v=1"}}, ran)
	if want := fmt.Sprintf("kubelet --v=1 GOGC=%d\n", GOGC); string(got) != want {
		t.Errorf("the built-in component ran as %q, want %q", got, want)
	}
}

// runUntil supervises c until it has written the file ran, and returns
// what it wrote.
func runUntil(t *testing.T, self string, c Component, ran string) []byte {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		Run(ctx, slog.New(slog.DiscardHandler), self, c, t.TempDir())
		close(done)
	}()
	var got []byte
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if got, _ = os.ReadFile(ran); len(got) > 0 {
			break
		}
	}
	cancel()
	<-done
	return got
}

func TestTogetherPartsRoundTrip(t *testing.T) {
	c, ok := Together("control-plane",
		Component{Name: "kube-apiserver", Args: []string{"--a=1", "--b=2"}},
		Component{Name: "kube-scheduler"},
		Component{Name: "kube-controller-manager", Args: []string{"--c=3"}, Env: []string{"X=1"}})
	want := []string{"kube-apiserver", "--a=1", "--b=2", "--", "kube-scheduler", "--", "kube-controller-manager", "--c=3"}
	if !ok || c.Name != "control-plane" || !slices.Equal(c.Args, want) || !slices.Equal(c.Env, []string{"X=1"}) {
		t.Fatalf("Together: %+v, want args %q", c, want)
	}
	got := Parts(c.Args)
	if len(got) != 3 || !slices.Equal(got["kube-apiserver"], want[1:3]) || len(got["kube-scheduler"]) != 0 ||
		!slices.Equal(got["kube-controller-manager"], []string{"--c=3"}) {
		t.Errorf("Parts: %q", got)
	}
	if _, ok := got["kube-scheduler"]; !ok {
		t.Error("Parts lost the part without arguments")
	}
}

func TestUpstreamProgramsDoNotShareAProcess(t *testing.T) {
	dir := t.TempDir()
	old := UpstreamDir
	UpstreamDir = dir
	t.Cleanup(func() { UpstreamDir = old })
	os.WriteFile(filepath.Join(dir, "kube-proxy"), []byte("#!/bin/sh\n"), 0o755)
	if c, ok := Together("node-components", Component{Name: "kubelet"}, Component{Name: "kube-proxy"}); ok {
		t.Errorf("Together with an upstream kube-proxy gave %+v, want none", c)
	}
	if _, ok := Together("control-plane", Component{Name: "kube-apiserver"}); !ok {
		t.Error("Together refused built-in components")
	}
}
