package agent

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A node that was Ready before a reboot reads Ready until the kubelet
// posts again: that is not this boot's Ready, which an update's trial
// waits for.
func TestReadyIsThisBootsKubelets(t *testing.T) {
	boot := time.Date(2026, 12, 2, 10, 0, 0, 500e6, time.UTC)
	node := func(status corev1.ConditionStatus, heartbeat time.Time) *corev1.Node {
		return &corev1.Node{Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
			{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, LastHeartbeatTime: metav1.NewTime(heartbeat)},
			{Type: corev1.NodeReady, Status: status, LastHeartbeatTime: metav1.NewTime(heartbeat)},
		}}}
	}
	before := boot.Add(-10 * time.Minute)
	f := &freshness{since: boot}
	if f.ready(node(corev1.ConditionTrue, before)) {
		t.Error("the last boot's Ready counts")
	}
	if f.ready(node(corev1.ConditionUnknown, before)) {
		t.Error("the node controller's Unknown counts")
	}
	if f.ready(node(corev1.ConditionFalse, boot.Add(time.Second))) {
		t.Error("the kubelet's NotReady counts")
	}
	// The API keeps seconds: a post in the second the kubelet started.
	if !f.ready(node(corev1.ConditionTrue, boot.Truncate(time.Second))) {
		t.Error("this boot's Ready does not count")
	}
	// A clock stepped back after the start: the heartbeat is older than
	// since, but not the one seen first.
	f = &freshness{since: boot}
	f.ready(node(corev1.ConditionTrue, before))
	if !f.ready(node(corev1.ConditionTrue, before.Add(-time.Hour))) {
		t.Error("a new heartbeat behind a clock stepped back does not count")
	}
	if (&freshness{since: boot}).ready(&corev1.Node{}) {
		t.Error("a node without conditions is Ready")
	}

	// With boot ids, only they count, whatever the clocks say.
	f = &freshness{bootID: "this-boot", since: boot}
	withID := func(n *corev1.Node, id string) *corev1.Node {
		n.Status.NodeInfo.BootID = id
		return n
	}
	if f.ready(withID(node(corev1.ConditionTrue, boot.Add(time.Hour)), "last-boot")) {
		t.Error("the last boot's Ready counts, its heartbeat from a clock set ahead")
	}
	if f.ready(withID(node(corev1.ConditionFalse, boot.Add(time.Second)), "this-boot")) {
		t.Error("this boot's NotReady counts")
	}
	if !f.ready(withID(node(corev1.ConditionTrue, before), "this-boot")) {
		t.Error("this boot's Ready, its heartbeat behind a clock stepped back, does not count")
	}
	// A kubelet that posts no boot id: the heartbeats count.
	if f.ready(withID(node(corev1.ConditionTrue, before), "")) || !f.ready(withID(node(corev1.ConditionTrue, boot.Add(time.Second)), "")) {
		t.Error("without the node's boot id, the heartbeats do not decide")
	}
	if id := newFreshness().bootID; len(id) != 36 {
		t.Errorf("this boot's id: %q", id)
	}
}
