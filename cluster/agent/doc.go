// Package agent runs the node side of a Cairn cluster: containerd (with
// Debian's runc and CNI plugins from the image), the kubelet on cgroup v2
// and kube-proxy, each a supervised child process of cairnd. It imports the
// images baked into the root (the pause image and the config's images:)
// before the kubelet starts, so no registry is needed to come up, and
// reports when its node is Ready.
//
// Pod networking: containerd writes the CNI config from a template once
// the kubelet hands it the node's pod CIDR (allocated by the controller
// manager): a bridge with host-local addresses and portmap.
package agent
