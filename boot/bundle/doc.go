// Package bundle is the update bundle's format, shared by the builder that
// writes it and the node that reads it: a plain tar whose first member is
// a manifest (JSON: what the bundle is for, and each slot file's name,
// size and sha256), whose second is the manifest's ed25519 signature, and
// whose further members are the slot's files in the manifest's order.
//
// A reader checks the signature against the keys it trusts before it
// hands out a byte of any file, and each file's size and hash while the
// caller streams it, so a bundle is never held whole: the reader's memory
// is bounded whatever the bundle's size. It does no I/O of its own and
// knows nothing of slots, disks or networks.
package bundle
