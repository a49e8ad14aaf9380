package family

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cairn-os/cairn/boot"
	"github.com/cairn-os/cairn/image/fstree"
)

// tryboot: the Raspberry Pi 5 firmware boots the slot partition that
// autoboot.txt names, and the other one once after `reboot "0 tryboot"`.
// A slot partition is FAT and holds the firmware, the device trees,
// config.txt, the kernel, the initramfs and the root squashfs as a file.
type tryboot struct{}

func (tryboot) Slot(p *Parts) (*Slot, error) {
	s, err := common(boot.RPiTryboot, p)
	if err == nil {
		err = addAll(s.Files, p.Firmware)
	}
	if err == nil {
		err = addAll(s.Files, p.DTBs)
	}
	if err == nil {
		err = s.Files.AddData("config.txt", 0o644, []byte(boot.RPiConfig()))
	}
	s.Used = s.Files.Size()
	return s, err
}

// Fresh is the first partition: autoboot.txt, committed to slot A.
func (tryboot) Fresh(p *Parts, diskID string) (*fstree.Tree, error) {
	t := fstree.New()
	return t, t.AddData("autoboot.txt", 0o644, []byte(boot.Autoboot(boot.SlotA)))
}

func (tryboot) Install(d Disk, s *Slot, slot string) error { return installFAT(d, s, slot) }

// The tryboot family's chooser (docs/adr/0013): autoboot.txt names the
// committed slot's partition under [all] and the other slot's under
// [tryboot]. The firmware boots the [tryboot] one when the reboot before
// asked it to (TrialReboot), and forgets that after one boot, so arming a
// trial writes nothing. A commit rewrites autoboot.txt's one sector in
// place: the firmware reads at most that much of it.

const autobootFile = "autoboot.txt"

// autobootSize is the most of autoboot.txt the firmware reads.
const autobootSize = 512

// trybootCommitted is the slot autoboot.txt boots when no trial is asked
// for, and whether the file is the one Autoboot writes for it.
func trybootCommitted(bootDir string) (slot string, canonical bool, err error) {
	data, err := readHead(filepath.Join(bootDir, autobootFile), autobootSize)
	if err != nil {
		return "", false, fmt.Errorf("the boot partition's %s: %w", autobootFile, err)
	}
	section, part := "[all]", "" // lines before any section apply to all
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			section = line
		} else if k, v, ok := strings.Cut(line, "="); ok && section == "[all]" && strings.TrimSpace(k) == "boot_partition" {
			part = strings.TrimSpace(v)
		}
	}
	for _, slot := range []string{boot.SlotA, boot.SlotB} {
		if part == strconv.Itoa(boot.SlotPart(slot)) {
			return slot, string(data) == boot.Autoboot(slot), nil
		}
	}
	return "", false, fmt.Errorf("the boot partition's %s boots partition %q, not a slot's (%d or %d); flash a new image to take updates",
		autobootFile, part, boot.SlotPart(boot.SlotA), boot.SlotPart(boot.SlotB))
}

func (tryboot) Committed(bootDir string) (string, error) {
	slot, _, err := trybootCommitted(bootDir)
	return slot, err
}

// Disarm has nothing to cancel: only the reboot after Arm asks for a
// trial. It writes autoboot.txt again if it is not what a trial of the
// other slot needs, as Arm does, for no slot in particular.
func (t tryboot) Disarm(bootDir string) error { return t.Arm(bootDir, "") }

// Arm checks that autoboot.txt names slot for a trial, written as Disarm
// says; the reboot that follows asks the firmware for it.
func (tryboot) Arm(bootDir, slot string) error {
	committed, canonical, err := trybootCommitted(bootDir)
	switch {
	case err != nil:
		return err
	case committed == slot:
		return fmt.Errorf("slot %s is the committed one; only the other slot can be put on trial", slot)
	case canonical:
		return nil
	}
	return autoboot(bootDir, committed)
}

// Commit rewrites autoboot.txt for slot, in place: the files for either
// slot have the same length.
func (tryboot) Commit(bootDir, slot string) error {
	committed, canonical, err := trybootCommitted(bootDir)
	if err != nil || committed == slot && canonical {
		return err
	}
	return autoboot(bootDir, slot)
}

// autoboot rewrites autoboot.txt with committed slot committed.
func autoboot(bootDir, committed string) error {
	return rewrite(filepath.Join(bootDir, autobootFile), []byte(boot.Autoboot(committed)))
}

// TrialReboot is what the reboot into an armed trial passes to the kernel
// (reboot(2)'s LINUX_REBOOT_CMD_RESTART2) for a family whose firmware
// learns of the trial from it: on the Raspberry Pi 5, whose kernel hands
// "tryboot" on to the firmware. It is "" for the others.
func TrialReboot(f boot.Family) string {
	if f == boot.RPiTryboot {
		return "0 tryboot"
	}
	return ""
}

// uboot: the Raspberry Pi 3/4 firmware starts U-Boot from the first
// partition, whose boot.scr picks the slot with a boot counter and loads
// its kernel and initramfs. A slot partition is FAT and holds the device
// trees, the kernel, the initramfs and the root squashfs as a file.
type uboot struct{}

func (uboot) Slot(p *Parts) (*Slot, error) {
	s, err := common(boot.RPiUBoot, p)
	if err == nil {
		err = addAll(s.Files, p.DTBs)
	}
	s.Used = s.Files.Size()
	return s, err
}

// Fresh is the first partition: the firmware, U-Boot, the device trees,
// config.txt and boot.scr, which carries the disk's identifier.
func (uboot) Fresh(p *Parts, diskID string) (*fstree.Tree, error) {
	t := fstree.New()
	if err := addAll(t, p.Firmware); err != nil {
		return nil, err
	}
	if err := addAll(t, p.DTBs); err != nil {
		return nil, err
	}
	if err := t.AddData("config.txt", 0o644, []byte(boot.RPiUBootConfig())); err != nil {
		return nil, err
	}
	script := boot.UBootScript(p.Console, diskID, p.Args)
	if err := t.AddData("boot.scr", 0o644, boot.UBootImage(script, uint32(p.Epoch.Unix()))); err != nil {
		return nil, err
	}
	// Slot A is committed; boot.scr has tried nothing yet. The files are
	// there from the start, so that each change rewrites one in place.
	for name, vars := range map[string]map[string]string{
		boot.UBootSlotFile(boot.SlotA): ubootSlot{state: stateGood, gen: 1}.vars(boot.SlotA),
		boot.UBootSlotFile(boot.SlotB): ubootSlot{state: stateNone}.vars(boot.SlotB),
		boot.UBootTriedFile:            {"cairn_tried": "0"},
	} {
		env, err := boot.UBootEnv(vars)
		if err == nil {
			err = t.AddData(name, 0o644, env)
		}
		if err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Install writes the slot's FAT partition; U-Boot ignores its cmdline.txt,
// which says what the slot boots with.
func (uboot) Install(d Disk, s *Slot, slot string) error { return installFAT(d, s, slot) }

// The U-Boot family's chooser (docs/adr/0012): each slot's state file,
// which boot.scr reads (boot.UBootScript). A change rewrites one file in
// place, one sector, and never the committed slot's: after a power cut
// that file is old, new or unreadable (none), and the committed slot is
// still good, so a card always has a slot to boot.

const (
	stateNone  = "none"
	stateTrial = "trial"
	stateGood  = "good"
)

type ubootSlot struct {
	state string
	gen   int
	torn  bool // the file is missing or unreadable
}

func (s ubootSlot) vars(slot string) map[string]string {
	return map[string]string{"cairn_" + slot + "_state": s.state, "cairn_" + slot + "_gen": strconv.Itoa(s.gen)}
}

// ubootSlots reads both slots' states, as boot.scr does: a file missing
// or failing its checksum is none. Another read error is returned: a slot
// must not look uncommitted for a moment's trouble with the card.
func ubootSlots(bootDir string) (map[string]ubootSlot, error) {
	slots := map[string]ubootSlot{}
	for _, slot := range []string{boot.SlotA, boot.SlotB} {
		s := ubootSlot{state: stateNone, torn: true}
		data, err := readUBootEnv(filepath.Join(bootDir, boot.UBootSlotFile(slot)))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("slot %s's state: %w", slot, err)
		}
		if vars, err := boot.ParseUBootEnv(data); err == nil {
			gen, err := strconv.Atoi(vars["cairn_"+slot+"_gen"])
			if st := vars["cairn_"+slot+"_state"]; err == nil && gen >= 0 && (st == stateNone || st == stateTrial || st == stateGood) {
				s = ubootSlot{state: st, gen: gen}
			}
		}
		slots[slot] = s
	}
	return slots, nil
}

// ubootTried is the generation of the last trial boot.scr started, or 0.
func ubootTried(bootDir string) int {
	data, _ := readUBootEnv(filepath.Join(bootDir, boot.UBootTriedFile))
	vars, err := boot.ParseUBootEnv(data)
	if err != nil {
		return 0
	}
	gen, _ := strconv.Atoi(vars["cairn_tried"])
	return max(gen, 0)
}

// readUBootEnv reads the part of a state file that boot.scr imports, its
// first boot.UBootEnvSize bytes, whatever the file's size.
func readUBootEnv(name string) ([]byte, error) { return readHead(name, boot.UBootEnvSize) }

// readHead reads a file's first n bytes, or all of a shorter one: as much
// of it as a boot loader or firmware reads.
func readHead(name string, n int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, n))
}

// committed is the slot boot.scr boots when none is on trial.
func ubootCommitted(slots map[string]ubootSlot) string {
	a, b := slots[boot.SlotA], slots[boot.SlotB]
	if b.state == stateGood && (a.state != stateGood || b.gen > a.gen) {
		return boot.SlotB
	}
	return boot.SlotA
}

func (uboot) Committed(bootDir string) (string, error) {
	if _, err := os.Stat(filepath.Join(bootDir, boot.UBootSlotFile(boot.SlotA))); err != nil {
		return "", fmt.Errorf("the boot partition has no %s (a card made before updates came to this board?): flash a new image to take updates: %w",
			boot.UBootSlotFile(boot.SlotA), err)
	}
	slots, err := ubootSlots(bootDir)
	if err != nil {
		return "", err
	}
	return ubootCommitted(slots), nil
}

// Disarm marks the slot that is not committed as holding nothing, before
// it is written: neither a trial nor a fallback to a half-written slot. A
// state file a power cut tore is written whole again.
func (uboot) Disarm(bootDir string) error {
	slots, err := ubootSlots(bootDir)
	if err != nil {
		return err
	}
	other := boot.Other(ubootCommitted(slots))
	if slots[other].state == stateNone && !slots[other].torn {
		return nil
	}
	return writeUBootSlot(bootDir, other, ubootSlot{state: stateNone, gen: slots[other].gen})
}

// Arm puts slot on trial with a generation newer than any, and than the
// last trial boot.scr started: a generation it tried already would not
// boot (a torn state file forgets its generation).
func (uboot) Arm(bootDir, slot string) error {
	slots, err := ubootSlots(bootDir)
	if err != nil {
		return err
	}
	if ubootCommitted(slots) == slot {
		return fmt.Errorf("slot %s is the committed one; only the other slot can be put on trial", slot)
	}
	gen := max(slots[boot.SlotA].gen, slots[boot.SlotB].gen, ubootTried(bootDir)) + 1
	return writeUBootSlot(bootDir, slot, ubootSlot{state: stateTrial, gen: gen})
}

// Commit marks slot good, with the newest generation.
func (uboot) Commit(bootDir, slot string) error {
	slots, err := ubootSlots(bootDir)
	if err != nil {
		return err
	}
	if ubootCommitted(slots) == slot && slots[slot].state == stateGood {
		return nil
	}
	s := slots[slot]
	if other := slots[boot.Other(slot)]; s.gen <= other.gen {
		s.gen = other.gen + 1
	}
	s.state = stateGood
	return writeUBootSlot(bootDir, slot, s)
}

// writeUBootSlot rewrites a slot's state file in place.
func writeUBootSlot(bootDir, slot string, s ubootSlot) error {
	env, err := boot.UBootEnv(s.vars(slot))
	if err == nil {
		err = rewrite(filepath.Join(bootDir, boot.UBootSlotFile(slot)), env)
	}
	if err != nil {
		return fmt.Errorf("slot %s's state: %w", slot, err)
	}
	return nil
}

// rewrite writes data over a file of the same length in place, without
// truncating it, so that no cluster of the file system is freed or
// allocated, and syncs it. A file of another length (or none) is written
// whole instead.
func rewrite(name string, data []byte) error {
	flags := os.O_WRONLY
	if fi, err := os.Stat(name); err != nil || fi.Size() != int64(len(data)) {
		flags |= os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(name, flags, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(data, 0)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// installFAT writes a FAT slot partition: the slot's files and cmdline.txt
// for this slot and disk, labelled with the slot's name.
func installFAT(d Disk, s *Slot, slot string) error {
	t := fstree.New()
	for _, e := range s.Files.Walk() {
		if e.Mode.IsRegular() {
			if err := t.Put(e.Path, e); err != nil {
				return err
			}
		}
	}
	if err := t.AddData("cmdline.txt", 0o644, []byte(s.cmdline(slot, d.ID())+"\n")); err != nil {
		return err
	}
	return writeFAT(d, boot.SlotPart(slot), t, "CAIRN-"+strings.ToUpper(slot), s.Epoch)
}

// copyEntry copies a file's content to w at off.
func copyEntry(w io.WriterAt, off int64, e *fstree.Entry) error {
	r, err := e.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	return WriteFull(io.NewOffsetWriter(w, off), r, 4<<20)
}

// WriteFull copies r to w in writes of size bytes, but the last: io.Copy
// writes each read as it comes, and a read from the network is a few
// kilobytes that end anywhere, where a block device's page cache must
// read the partial block before it writes it. Writing an update's root
// that way was 10 times slower than dd (make bench).
func WriteFull(w io.Writer, r io.Reader, size int) error {
	buf := make([]byte, size)
	for {
		n := 0
		var err error
		for n < len(buf) && err == nil {
			var m int
			m, err = r.Read(buf[n:])
			n += m
		}
		if n > 0 {
			if nw, werr := w.Write(buf[:n]); werr != nil || nw != n {
				return cmp.Or(werr, io.ErrShortWrite)
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
