package family

import (
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

// tryboot: the Raspberry Pi 4/5 firmware boots the slot partition that
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

// uboot: the Raspberry Pi 3 firmware starts U-Boot from the first
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
func readUBootEnv(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, boot.UBootEnvSize))
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
	_, err = io.CopyBuffer(io.NewOffsetWriter(w, off), r, make([]byte, 4<<20))
	return err
}
