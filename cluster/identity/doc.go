// Package identity owns a cluster's secrets on the build machine: the CAs
// (server, client, request-header, kubelet-serving), the service-account
// signing key, the key that encrypts Secrets at rest, and the join secret.
// One bundle per cluster is made on the first build and reused by every
// image of that cluster, so servers and agents built on different days
// still trust each other. A bundle made by an older cairn gets the CAs it
// lacks on the next build; the CAs it has are never replaced.
//
// The join token names the server CA by its hash, so an agent that holds
// only the token can refuse a server whose CA does not match.
// RotateSecret replaces the join secret and keeps the old one, which
// CheckSecret accepts until a deadline, so agents built with it keep
// joining until they are rebuilt. Node certificates last NodeLifetime and
// are renewed half-way (RenewAt); the others last 5 years. The package
// also writes the admin kubeconfig that `cairn build` leaves next to a
// server image.
//
// It does not talk to a cluster and holds no Kubernetes code.
package identity
