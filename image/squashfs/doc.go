// Package squashfs writes squashfs 4.0 images from an fstree.Tree: data
// blocks compressed in parallel (gzip, xz or zstd), fragments packing the
// tails of files, and the inode, directory, fragment and id tables. Output
// depends only on the tree and the options (entries are sorted, the time is
// given), so the same input gives the same bytes.
//
// It writes; it does not read. Tests check its output with unsquashfs and the
// Linux kernel.
package squashfs
