// Package boot is how machines boot, shared by the builder and the device:
// the boot families, the slot model (A and B, which partition holds what),
// the kernel command line keys that tell init its slot and disk, the boot
// files each family's firmware reads (systemd-boot loader entries,
// Raspberry Pi config.txt and autoboot.txt, U-Boot's boot.scr), the build's
// description baked into the image, and the health file cairnd writes for
// init. Its I/O is limited to reading those two files and writing the
// health file; boot/family writes slots and boot partitions.
package boot
