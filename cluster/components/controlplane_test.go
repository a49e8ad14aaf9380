//go:build cairnd

package components

import (
	"slices"
	"testing"
)

func TestPartnersShareTheOwnersLoggingFlags(t *testing.T) {
	parts := map[string][]string{
		"kube-apiserver":          {"--secure-port=6443", "--v=4", "--vmodule=x=2"},
		"kube-controller-manager": {"--kubeconfig=/k"},
		"kube-scheduler":          {"--v=1"},
	}
	shareLogging(parts, "kube-apiserver")
	if want := []string{"--kubeconfig=/k", "--v=4", "--vmodule=x=2"}; !slices.Equal(parts["kube-controller-manager"], want) {
		t.Errorf("controller-manager: %q, want %q", parts["kube-controller-manager"], want)
	}
	// A value of its own stays, and the upstream check reports the conflict.
	if want := []string{"--v=1", "--vmodule=x=2"}; !slices.Equal(parts["kube-scheduler"], want) {
		t.Errorf("scheduler: %q, want %q", parts["kube-scheduler"], want)
	}
	if want := []string{"--secure-port=6443", "--v=4", "--vmodule=x=2"}; !slices.Equal(parts["kube-apiserver"], want) {
		t.Errorf("apiserver changed: %q", parts["kube-apiserver"])
	}
}

func TestContainerdGetsNoKubernetesLoggingFlags(t *testing.T) {
	parts := map[string][]string{
		"kubelet":    {"--v=2"},
		"containerd": {"--config=/run/cairn/agent/containerd.toml"},
	}
	shareLogging(parts, "kubelet")
	if want := []string{"--config=/run/cairn/agent/containerd.toml"}; !slices.Equal(parts["containerd"], want) {
		t.Errorf("containerd: %q, want %q (it would refuse --v)", parts["containerd"], want)
	}
}
