// Package build turns a board profile and a node config into a built slot.
// Plan resolves what a user asks (board, config, SOURCE_DATE_EPOCH, the
// cluster's secrets, container images and manifests); Build fetches and
// unpacks the packages through the package supply and makes the root
// squashfs, the initramfs and the slot its board's family arranges
// (boot/family). Outputs turn the Artifacts into files: image/disk writes a
// disk image (Image does both); a netboot folder and an update bundle are
// to come. Besides the output and its work folder, it writes the package
// and image caches, the cluster's secrets folder (made on a cluster's
// first build, completed when a newer cairn needs more) and, for a server,
// the admin kubeconfig next to the image.
package build
