package boot

import "fmt"

// Family is how a board boots and chooses between slots A and B. The
// builder reads it from the board profile and bakes it into BuildInfo, so
// init knows it too; boot/family holds what each family does.
type Family string

const (
	// UEFI: GPT; an EFI system partition with systemd-boot, a loader entry
	// per slot and each slot's kernel and initramfs; raw root partitions.
	UEFI Family = "uefi"
	// RPiTryboot: MBR; autoboot.txt on the first partition, FAT slot
	// partitions, and the firmware's one-shot tryboot (Pi 5: its kernel
	// asks the firmware for it; docs/adr/0013).
	RPiTryboot Family = "rpi-tryboot"
	// RPiUBoot: MBR; firmware and U-Boot on the first partition, whose
	// boot.scr chooses the FAT slot and tries one once (Pi 3, Zero 2 W, Pi
	// 4, 400, CM4; docs/adr/0012, 0013).
	RPiUBoot Family = "rpi-uboot"
)

// Families lists every family.
var Families = []Family{UEFI, RPiTryboot, RPiUBoot}

// Check says whether f is a known family.
func (f Family) Check() error {
	for _, k := range Families {
		if f == k {
			return nil
		}
	}
	return fmt.Errorf("family %q: want %s, %s or %s", f, UEFI, RPiTryboot, RPiUBoot)
}

// Table is the partition table the family's firmware reads: gpt or mbr.
func (f Family) Table() string {
	if f == UEFI {
		return "gpt"
	}
	return "mbr"
}

// RootInSlotFile says whether the root squashfs is a file (RootFile) in a
// FAT slot partition, to be loop-mounted, rather than the raw partition.
func (f Family) RootInSlotFile() bool { return f != UEFI }
