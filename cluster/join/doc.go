// Package join is how an agent becomes a node of a server's cluster. The
// server listens on Port with its apiserver certificate and the server CA
// in the chain. The agent checks that CA against the hash in its join
// token before it sends anything, then posts the token's secret with
// certificate requests for its kubelet (client and serving) and kube-proxy,
// and its node password. The server checks the secret, and the password
// against the one the first join under that node name set (so the token
// alone cannot take over another node's name), and signs the requests for
// the node name and addresses asked, unless they are Reserved: the
// server's and the apiserver's names and addresses, loopback, and the
// service and pod ranges. The certificates never take names from the
// requests, and a request that asks for others is refused. Private keys
// never leave the agent.
//
// The certificates last identity.NodeLifetime (30 days). The agent keeps
// them in Creds, each with its key in one file that its kubeconfigs name,
// and joins again while it runs once they are half-way through their life
// (Renewal); the kubelet and kube-proxy read the replaced files without a
// restart. A server's own node gets the same certificates from Issue,
// renewed the same way.
//
// Keeping a node out: the server accepts only the bundle's join secret, and
// after a rotation the previous one until its deadline
// (identity.Bundle.CheckSecret); and it refuses (403) every join under a
// node name that the cluster's administrators refused, which Refuse does
// from the build machine with a Secret in kube-system that the server
// reads through Refusals. Either way the node's certificates run out
// within identity.NodeLifetime.
//
// The kubelet's serving certificate comes from the cluster's
// kubelet-serving CA, not the server CA: only the apiserver trusts it, and
// only to reach kubelets, so a token holder cannot make a certificate that
// pods, administrators or other agents would take for the API.
//
// The endpoint is open to the network, so it bounds what a client can
// spend (Limits): read, write and idle timeouts, header and body sizes,
// connections at once, and a token bucket per source address, past which
// a client gets 429 with Retry-After. Refusals are logged through a token
// bucket of their own, and the next line logged counts those left out.
package join
