package server

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/cairn-os/cairn/cluster/join"
)

// nodeRefusals reads the refusals of node names from Secrets in
// kube-system (join.RefusalSecret), which only the cluster's
// administrators may write, in the datastore every server shares: a
// refusal takes effect on every server at the next join, without a new
// image.
type nodeRefusals struct{ cs kubernetes.Interface }

// Refused implements join.Refusals.
func (n nodeRefusals) Refused(ctx context.Context, node string) (bool, error) {
	_, err := n.cs.CoreV1().Secrets(metav1.NamespaceSystem).Get(ctx, join.RefusalSecret(node), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}
