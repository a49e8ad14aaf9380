// Package build turns a board profile and a node config into a disk image:
// it plans the packages, fetches and unpacks them through the package supply,
// assembles the root tree, the initramfs and the slot contents, and writes
// the partitioned image. Output goes to a temporary file that is renamed
// into place only when everything succeeded.
package build
