package boot

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"slices"
	"strings"
)

// The U-Boot family (Raspberry Pi 3 and 4) keeps each slot's state in a
// file of its own on the boot partition, in U-Boot's checksummed
// environment format (env export -c), one sector long: cairn/a.env and cairn/b.env, written by
// Linux, hold cairn_X_state (none, trial or good) and cairn_X_gen, a number
// that grows with each trial armed; cairn/tried.env, written by boot.scr,
// holds cairn_tried, the generation of the last trial it started
// (docs/adr/0012).
const (
	UBootEnvSize   = 512
	UBootTriedFile = "cairn/tried.env"
)

// UBootSlotFile is the state file of slot.
func UBootSlotFile(slot string) string { return "cairn/" + slot + ".env" }

// UBootScript is the U-Boot script of the Raspberry Pi 3/4 family. It boots
// the good slot with the higher generation (slot a if neither is good),
// and the other slot instead when that one is on trial and was not tried
// yet: it notes the trial in cairn/tried.env first, and boots the trial
// only when that write succeeded, so that the next boot, whatever becomes
// of this one, is the committed slot's again; a trial that does not load
// or start resets the board. A state file that is missing or fails its
// checksum reads as none. It reads and writes the device U-Boot's distro
// boot found it on (an SD card or eMMC, or a USB drive on a Pi 4).
func UBootScript(consoles []string, disk string, extra []string) string {
	args := Cmdline("${boot_slot}", disk, consoles, extra)
	return strings.Join([]string{
		"# Cairn: the newest good slot boots; a slot on trial boots once.",
		"# The card or drive is the one U-Boot's distro boot found this script on",
		"# (the SD card is mmc 0 on a Pi 3, mmc 1 on a Pi 4); run by hand, mmc 0.",
		"if test -z \"${devtype}\"; then setenv devtype mmc; setenv devnum 0; fi",
		"setenv cairn_a_state; setenv cairn_a_gen 0; setenv cairn_b_state; setenv cairn_b_gen 0",
		"for s in a b; do",
		"  mw.b ${kernel_addr_r} 0 0x200",
		"  if load ${devtype} ${devnum}:1 ${kernel_addr_r} cairn/${s}.env; then env import -c ${kernel_addr_r} 0x200 cairn_${s}_state cairn_${s}_gen; fi",
		"done",
		"setenv boot_slot a",
		"if test \"${cairn_b_state}\" = good; then",
		"  if test \"${cairn_a_state}\" != good; then setenv boot_slot b; else if test ${cairn_b_gen} -gt ${cairn_a_gen}; then setenv boot_slot b; fi; fi",
		"fi",
		"setenv trial",
		"if test ${boot_slot} = a; then",
		"  if test \"${cairn_b_state}\" = trial; then setenv trial b; setenv trial_gen ${cairn_b_gen}; fi",
		"else",
		"  if test \"${cairn_a_state}\" = trial; then setenv trial a; setenv trial_gen ${cairn_a_gen}; fi",
		"fi",
		"if test -n \"${trial}\"; then",
		"  setenv cairn_tried",
		"  mw.b ${kernel_addr_r} 0 0x200",
		"  if load ${devtype} ${devnum}:1 ${kernel_addr_r} " + UBootTriedFile + "; then env import -c ${kernel_addr_r} 0x200 cairn_tried; fi",
		"  if test \"${cairn_tried}\" = \"${trial_gen}\"; then",
		"    echo cairn: slot ${trial} had its trial, booting slot ${boot_slot}",
		"  else",
		"    setenv cairn_tried ${trial_gen}",
		"    env export -c -s 0x200 ${kernel_addr_r} cairn_tried",
		"    if fatwrite ${devtype} ${devnum}:1 ${kernel_addr_r} " + UBootTriedFile + " 0x200; then",
		"      echo cairn: slot ${trial} on trial, once; setenv boot_slot ${trial}",
		"    else",
		"      echo cairn: cannot note the trial of slot ${trial}, booting slot ${boot_slot}",
		"    fi",
		"  fi",
		"fi",
		"if test \"${boot_slot}\" = b; then setenv slot_part 3; else setenv slot_part 2; fi",
		"echo cairn: booting slot ${boot_slot} from partition ${slot_part}",
		"load ${devtype} ${devnum}:${slot_part} ${kernel_addr_r} vmlinuz",
		"load ${devtype} ${devnum}:${slot_part} ${ramdisk_addr_r} initrd.img",
		"setenv bootargs \"" + args + "\"",
		"booti ${kernel_addr_r} ${ramdisk_addr_r}:${filesize} ${fdt_addr}",
		"# Here only when the slot could not be loaded or started: a trial was",
		"# noted, so the next start is the committed slot's.",
		"if test \"${boot_slot}\" = \"${trial}\"; then echo cairn: slot ${trial} did not start, resetting; reset; fi",
		"",
	}, "\n")
}

// UBootEnv is vars in U-Boot's checksummed environment format, UBootEnvSize
// bytes: a CRC-32 (little-endian) of the rest, then name=value entries,
// each ending in a zero byte, in name order, then zeros.
func UBootEnv(vars map[string]string) ([]byte, error) {
	b := make([]byte, 4, UBootEnvSize)
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		b = append(b, k+"="+vars[k]+"\x00"...)
	}
	if len(b) >= UBootEnvSize {
		return nil, fmt.Errorf("u-boot environment of %d bytes does not fit in %d", len(b), UBootEnvSize)
	}
	b = b[:UBootEnvSize]
	binary.LittleEndian.PutUint32(b, crc32.ChecksumIEEE(b[4:]))
	return b, nil
}

// ParseUBootEnv reads what UBootEnv (or U-Boot's env export -c) wrote,
// as boot.scr's env import -c of UBootEnvSize bytes does: what lies beyond
// them is not read, and a shorter file reads as if zeros followed it
// (boot.scr clears the memory it loads the file into).
func ParseUBootEnv(b []byte) (map[string]string, error) {
	if len(b) < 5 {
		return nil, errors.New("not a u-boot environment: too short")
	}
	b = append(make([]byte, 0, UBootEnvSize), b[:min(len(b), UBootEnvSize)]...)[:UBootEnvSize]
	if binary.LittleEndian.Uint32(b) != crc32.ChecksumIEEE(b[4:]) {
		return nil, errors.New("not a u-boot environment, or its checksum does not match")
	}
	vars := map[string]string{}
	for _, e := range strings.Split(string(b[4:]), "\x00") {
		if e == "" {
			break
		}
		k, v, _ := strings.Cut(e, "=")
		vars[k] = v
	}
	return vars, nil
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

// RPiUBootConfig is config.txt on the first partition of a Pi 3 or 4: the
// firmware starts U-Boot, which runs boot.scr, and hands it the board's
// device tree from that partition, which U-Boot passes to the kernel. A
// CM4's firmware asks for bcm2711-rpi-cm4.dtb, a name Debian's kernel does
// not use.
func RPiUBootConfig() string {
	return "# Cairn: the firmware starts U-Boot, whose boot.scr picks the slot.\narm_64bit=1\nkernel=u-boot.bin\nenable_uart=1\ndisable_splash=1\n" +
		"[cm4]\ndevice_tree=bcm2711-rpi-cm4-io.dtb\n[all]\n"
}
