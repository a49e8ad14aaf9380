// Package vmtest holds the tests that build real images and check them with
// the real tools (sgdisk, sfdisk, fsck.vfat, unsquashfs, cpio, e2fsck) and by
// booting them in QEMU. It has no code of its own outside its tests, which
// run only with CAIRN_VMTEST set, as make test sets it.
package vmtest
