package agent

import (
	"context"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// nodeReady asks the API whether the node is Ready (an error while it is
// not registered), and returns the Node. cs has the kubelet's own
// credentials: the Node authorizer lets a node read itself.
func nodeReady(ctx context.Context, cs kubernetes.Interface, node string, fresh *freshness) (*corev1.Node, bool, error) {
	n, err := cs.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		return nil, false, err
	}
	return n, fresh.ready(n), nil
}

// freshness tells a Ready that this boot's kubelet posted from one kept
// from before: the Node outlives a reboot or a power cut with the status
// it had, and until the kubelet posts again (or the node controller marks
// it unknown) a node that was Ready reads Ready, which must not commit an
// update's trial or count as healthy.
type freshness struct {
	// bootID is this boot's (the kernel's random boot_id), which the
	// kubelet posts as the node's nodeInfo.bootID with its conditions.
	bootID string
	// Without a boot id on either side: a Ready with a heartbeat from
	// since on (to the second, as the API keeps it), or another heartbeat
	// than the first seen, is this boot's. A clock set from a saved time
	// after a power cut may make the last boot's look new.
	since time.Time
	first *metav1.Time
}

// bootIDFile holds the kernel's identifier of this boot.
const bootIDFile = "/proc/sys/kernel/random/boot_id"

// newFreshness is the freshness of this boot's Ready, from now on.
func newFreshness() *freshness {
	id, _ := os.ReadFile(bootIDFile)
	return &freshness{bootID: strings.TrimSpace(string(id)), since: time.Now()}
}

// ready says whether n is Ready as this boot's kubelet said it.
func (f *freshness) ready(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type != corev1.NodeReady {
			continue
		}
		if f.bootID != "" && n.Status.NodeInfo.BootID != "" {
			return c.Status == corev1.ConditionTrue && n.Status.NodeInfo.BootID == f.bootID
		}
		if f.first == nil {
			f.first = c.LastHeartbeatTime.DeepCopy()
		}
		posted := !c.LastHeartbeatTime.Time.Before(f.since.Truncate(time.Second)) || !c.LastHeartbeatTime.Equal(f.first)
		return c.Status == corev1.ConditionTrue && posted
	}
	return false
}

func clientFor(kubeconfig string) (*kubernetes.Clientset, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}
