package boot

import (
	"fmt"
	"strings"
)

// Slots.
const (
	SlotA = "a"
	SlotB = "b"
)

// Partition numbers, the same in every family.
const (
	PartBoot  = 1
	PartSlotA = 2
	PartSlotB = 3
	PartData  = 4
)

// GPT partition names (UEFI family).
var PartNames = map[int]string{PartBoot: "cairn-boot", PartSlotA: "cairn-root-a", PartSlotB: "cairn-root-b", PartData: "cairn-data"}

// Kernel command-line keys init reads.
const (
	ArgSlot  = "cairn.slot"  // a or b
	ArgDisk  = "cairn.disk"  // disk identifier: MBR id (8 hex) or GPT disk GUID
	ArgDebug = "cairn.debug" // 1 turns on the debug console
)

// SlotPart returns the partition number of a slot.
func SlotPart(slot string) int {
	if slot == SlotB {
		return PartSlotB
	}
	return PartSlotA
}

// Other returns the other slot.
func Other(slot string) string {
	if slot == SlotA {
		return SlotB
	}
	return SlotA
}

// RootFile is the root filesystem's name inside a FAT slot (Raspberry Pi).
const RootFile = "root.squashfs"

// Cmdline is the kernel command line for a slot. Transparent huge pages
// are only for programs that ask (madvise): with "always", the kernel
// gathers the pages a Go program has handed back into huge pages again,
// and a server kept about 30 MiB more (docs/adr/0007).
func Cmdline(slot, disk string, consoles, extra []string) string {
	var args []string
	for _, c := range consoles {
		args = append(args, "console="+c)
	}
	args = append(args, ArgSlot+"="+slot, ArgDisk+"="+disk, "panic=10", "transparent_hugepage=madvise")
	args = append(args, extra...)
	return strings.Join(args, " ")
}

// ParseCmdline returns the key=value arguments of a kernel command line.
func ParseCmdline(s string) map[string]string {
	out := map[string]string{}
	for _, f := range strings.Fields(s) {
		k, v, _ := strings.Cut(f, "=")
		out[k] = v
	}
	return out
}

// LoaderConf is systemd-boot's loader.conf: boot the saved default at once.
func LoaderConf(defaultSlot string) string {
	return fmt.Sprintf("default cairn-%s.conf\ntimeout 0\neditor no\nconsole-mode keep\n", defaultSlot)
}

// LoaderEntry is a systemd-boot entry for a slot, whose kernel and initramfs
// live in the ESP under /SLOT/.
func LoaderEntry(slot, version, cmdline string) string {
	return fmt.Sprintf("title Cairn (slot %s)\nversion %s\nsort-key cairn\nlinux /%s/vmlinuz\ninitrd /%s/initrd.img\noptions %s\n",
		strings.ToUpper(slot), version, slot, slot, cmdline)
}

// RPiConfig is config.txt inside a Raspberry Pi slot partition.
func RPiConfig() string {
	return "# Cairn slot: the firmware loads this kernel and initramfs.\n" +
		"arm_64bit=1\nkernel=vmlinuz\ninitramfs initrd.img followkernel\nenable_uart=1\ndisable_splash=1\n"
}

// Autoboot is autoboot.txt on the first partition of a Raspberry Pi 5: the
// firmware boots slot A, and slot B when a reboot asks for tryboot.
func Autoboot(committed string) string {
	tryPart := SlotPart(Other(committed))
	return fmt.Sprintf("[all]\ntryboot_a_b=1\nboot_partition=%d\n[tryboot]\nboot_partition=%d\n", SlotPart(committed), tryPart)
}
