package join

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-os/cairn/cluster/identity"
)

// refusedNames keeps refused node names in memory; down makes Refused fail
// as an unreachable API would.
type refusedNames struct {
	mu    sync.Mutex
	names map[string]bool
	down  bool
}

func (f *refusedNames) Refused(_ context.Context, node string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return false, errors.New("connection refused")
	}
	return f.names[node], nil
}

// TestRefusedNodeIsTurnedAway checks that a join under a refused name gets
// 403 with the way back, keeps no node password and is logged, that other
// names still join, and that a join is deferred while refusals cannot be
// read.
func TestRefusedNodeIsTurnedAway(t *testing.T) {
	var log logBuffer
	pw := &passwords{set: map[string]string{"edge-7": password1}}
	rf := &refusedNames{names: map[string]bool{"edge-7": true, "edge-8": true}}
	s := &Server{Cluster: cluster, Passwords: pw, Refusals: rf, Now: func() time.Time { return now }, Log: slog.New(slog.NewTextHandler(&log, nil))}
	api := start(t, s)
	tok, _ := identity.ParseToken(s.Bundle.Token())
	join := func(node string) error {
		req, _, _ := NewRequest(node, password1, []net.IP{net.IPv4(192, 168, 77, 2)})
		_, err := do(t, api, tok, req)
		return err
	}
	want := "403 Forbidden: node name refused: the cluster's administrators refused edge-7 (Secret kube-system/edge-7.node-refused.cairn); " +
		"to let a machine join under this name again, retire the node and lift the refusal: " +
		"kubectl delete node edge-7 && kubectl -n kube-system delete secret edge-7.node-password.cairn edge-7.node-refused.cairn"
	if err := join("edge-7"); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), want) {
		t.Errorf("the refused node, with its own password:\n%v\nwant it to end in\n%s", err, want)
	}
	if err := join("edge-8"); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "403") {
		t.Errorf("a refused name not seen before: %v", err)
	}
	if _, kept := pw.set["edge-8"]; kept {
		t.Error("a refused join kept its node password")
	}
	if !strings.Contains(log.String(), "join refused: node refused") {
		t.Errorf("server log:\n%s", log.String())
	}
	if err := join("edge-9"); err != nil {
		t.Errorf("a name not refused: %v", err)
	}
	rf.mu.Lock()
	rf.down = true
	rf.mu.Unlock()
	if err := join("edge-9"); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "503") {
		t.Errorf("with refusals that cannot be read: %v", err)
	}
}
