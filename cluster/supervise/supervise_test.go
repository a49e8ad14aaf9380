package supervise

import (
	"context"
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
	os.WriteFile(filepath.Join(dir, "etcd"), []byte("#!/bin/sh\necho \"$* $CAIRN_TEST\" > "+ran+"\nexec sleep 60\n"), 0o755)
	if Upstream("kubelet") != "" || Upstream("etcd") != filepath.Join(dir, "etcd") {
		t.Fatalf("Upstream: kubelet %q, etcd %q", Upstream("kubelet"), Upstream("etcd"))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		// self would fail at once: the upstream program must be what runs.
		Run(ctx, slog.New(slog.DiscardHandler), "/bin/false", Component{Name: "etcd", Args: []string{"--a=1"}, Env: []string{"CAIRN_TEST=yes"}}, dir)
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
	if string(got) != "--a=1 yes\n" {
		t.Errorf("the upstream program ran with %q, want its arguments and environment", got)
	}
}
