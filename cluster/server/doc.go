// Package server is `cairnd server`: the control plane of a Cairn cluster.
// It keeps kine in its own process (SQLite on the data partition, or the
// datastore URL from the config) and runs kube-apiserver,
// kube-controller-manager and kube-scheduler together in one child process
// of the same cairnd binary (each in its own when the image carries upstream
// programs), supervised with back-off. Before they start it writes their
// certificates, kubeconfigs and policy files from the cluster's secrets,
// minting the serving certificate for the node's current addresses; its
// own node's certificates it also renews while it runs, as agents renew
// theirs. Its join endpoint reads node passwords and refused node names
// from Secrets in kube-system.
//
// This package holds no Kubernetes code itself: the components are reached
// through cairnd's multicall entry points (package cluster/components), so
// its tests run on any machine.
package server
