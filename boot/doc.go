// Package boot is how machines boot, shared by the builder and the device:
// the slot model (A and B, which partition holds what), the kernel command
// line keys that tell init its slot and disk, and the boot files of each
// family (systemd-boot loader entries, Raspberry Pi config.txt, cmdline.txt
// and autoboot.txt). It holds no I/O beyond formatting and parsing.
package boot
