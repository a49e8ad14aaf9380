package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/cairn-os/cairn/cluster/join"
)

// nodePasswords keeps each node's password hash in a Secret in
// kube-system, in the datastore every server shares.
type nodePasswords struct{ cs kubernetes.Interface }

// Check implements join.Passwords. A name with no password yet gets this
// one, unless a Node of that name exists already (the server's own node,
// or a node that joined some other way): a token holder must not take it.
func (n nodePasswords) Check(ctx context.Context, node, password string) error {
	sum := sha256.Sum256([]byte(password))
	hash := []byte(hex.EncodeToString(sum[:]))
	name := join.PasswordSecret(node)
	secrets := n.cs.CoreV1().Secrets(metav1.NamespaceSystem)
	for range 2 { // a second round after losing a race to create it
		s, err := secrets.Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			if subtle.ConstantTimeCompare(s.Data["hash"], hash) == 1 {
				return nil
			}
			return fmt.Errorf("%w: a node named %s joined before from another machine (or before its data partition was wiped); give this machine another hostname, or retire the old node first: kubectl delete node %s && kubectl -n kube-system delete secret %s",
				join.ErrNodePassword, node, node, name)
		}
		if !apierrors.IsNotFound(err) {
			return err
		}
		if _, err := n.cs.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{}); err == nil {
			return fmt.Errorf("%w: a node named %s exists that did not join as an agent (the server's own node?); give this machine another hostname, or delete that node first: kubectl delete node %s",
				join.ErrNodePassword, node, node)
		} else if !apierrors.IsNotFound(err) {
			return err
		}
		immutable := true
		_, err = secrets.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{ManagedBy: "cairn"}},
			Immutable:  &immutable,
			Data:       map[string][]byte{"hash": hash},
		}, metav1.CreateOptions{})
		if !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	return fmt.Errorf("the password Secret %s keeps changing", name)
}
