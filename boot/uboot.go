package boot

import (
	"encoding/binary"
	"hash/crc32"
	"strings"
)

// UBootScript is the U-Boot script of the Raspberry Pi 3 family. U-Boot keeps
// cairn_slot (the committed slot) and, while a new slot is on trial,
// cairn_try (that slot) and cairn_left (boots left) in its environment on
// the boot partition. Each trial boot uses one; when none are left the
// committed slot boots again, so a slot that never comes up healthy falls
// back without help from the new system. Init commits by setting cairn_slot
// and clearing cairn_try.
func UBootScript(consoles []string, disk string, extra []string) string {
	args := Cmdline("${boot_slot}", disk, consoles, extra)
	return strings.Join([]string{
		"# Cairn A/B slot selection with a boot counter",
		"if test -z \"${cairn_slot}\"; then setenv cairn_slot a; fi",
		"setenv boot_slot ${cairn_slot}",
		"if test -n \"${cairn_try}\"; then",
		"  if test \"${cairn_left}\" -gt 0; then",
		"    setexpr cairn_left ${cairn_left} - 1",
		"    setenv boot_slot ${cairn_try}",
		"  else",
		"    echo cairn: slot ${cairn_try} used all its tries, booting ${cairn_slot}",
		"    setenv cairn_try",
		"    setenv cairn_left",
		"  fi",
		"  saveenv",
		"fi",
		"if test \"${boot_slot}\" = b; then setenv slot_part 3; else setenv slot_part 2; fi",
		"echo cairn: booting slot ${boot_slot} from partition ${slot_part}",
		"load mmc 0:${slot_part} ${kernel_addr_r} vmlinuz",
		"load mmc 0:${slot_part} ${ramdisk_addr_r} initrd.img",
		"setenv bootargs \"" + args + "\"",
		"booti ${kernel_addr_r} ${ramdisk_addr_r}:${filesize} ${fdt_addr}",
		"",
	}, "\n")
}

// UBootImage wraps a script in U-Boot's legacy image format (what mkimage -T
// script writes), with a fixed time for reproducibility.
func UBootImage(script string, unixTime uint32) []byte {
	data := make([]byte, 8, 8+len(script))
	binary.BigEndian.PutUint32(data[0:], uint32(len(script)))
	data = append(data, script...)
	h := make([]byte, 64)
	binary.BigEndian.PutUint32(h[0:], 0x27051956)
	binary.BigEndian.PutUint32(h[8:], unixTime)
	binary.BigEndian.PutUint32(h[12:], uint32(len(data)))
	binary.BigEndian.PutUint32(h[24:], crc32.ChecksumIEEE(data))
	h[28] = 5  // OS: Linux
	h[29] = 22 // arch: arm64
	h[30] = 6  // type: script
	h[31] = 0  // no compression
	copy(h[32:], "cairn boot script")
	binary.BigEndian.PutUint32(h[4:], crc32.ChecksumIEEE(h))
	return append(h, data...)
}

// RPiUBootConfig is config.txt on the first partition of a Pi 3: the firmware
// starts U-Boot, which runs boot.scr.
func RPiUBootConfig() string {
	return "# Cairn: the firmware starts U-Boot, whose boot.scr picks the slot.\narm_64bit=1\nkernel=u-boot.bin\nenable_uart=1\ndisable_splash=1\n"
}
