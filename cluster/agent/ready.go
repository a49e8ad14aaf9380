package agent

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// ReadyCheck asks the API, with the kubelet's own credentials (the Node
// authorizer lets a node read itself), whether the node is Ready.
func ReadyCheck(kubeconfig, node string) func(ctx context.Context) (bool, error) {
	var cs *kubernetes.Clientset // made on first use, then kept
	return func(ctx context.Context) (bool, error) {
		if cs == nil {
			var err error
			if cs, err = clientFor(kubeconfig); err != nil {
				return false, err
			}
		}
		n, err := cs.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				return c.Status == corev1.ConditionTrue, nil
			}
		}
		return false, nil
	}
}

func clientFor(kubeconfig string) (*kubernetes.Clientset, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}
