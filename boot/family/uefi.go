package family

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cairn-os/cairn/boot"
	"github.com/cairn-os/cairn/image/fstree"
)

// uefi: systemd-boot on the EFI system partition, with a loader entry per
// slot and each slot's kernel and initramfs in a folder named after it;
// the root squashfs is the raw slot partition.
type uefi struct{}

func (uefi) Slot(p *Parts) (*Slot, error) {
	s, err := common(boot.UEFI, p)
	if err == nil {
		root, _ := s.Files.Get(Root)
		s.Used = root.Size
	}
	return s, err
}

// Fresh is the ESP without slots: systemd-boot, set to boot slot A.
func (uefi) Fresh(p *Parts, diskID string) (*fstree.Tree, error) {
	t := fstree.New()
	if err := addAll(t, p.Firmware); err != nil {
		return nil, err
	}
	return t, t.AddData(loaderConf, 0o644, []byte(boot.LoaderConf(boot.SlotA)))
}

// Install puts the kernel and initramfs on the ESP under the slot's folder
// with the slot's loader entry, and the root into the slot partition.
func (uefi) Install(d Disk, s *Slot, slot string) error {
	files := d.Boot()
	for _, name := range []string{Kernel, Initrd} {
		e, _ := s.Files.Get(name)
		if err := files.Put(uefiFile(slot, name), e); err != nil {
			return err
		}
	}
	entry := boot.LoaderEntry(slot, s.Version, s.cmdline(slot, d.ID()))
	if err := files.Put("loader/entries/"+entryName(slot), &fstree.Entry{Mode: 0o644, Data: []byte(entry), Size: int64(len(entry))}); err != nil {
		return err
	}
	root, _ := s.Files.Get(Root)
	w, start, size, err := d.Partition(boot.SlotPart(slot))
	if err != nil {
		return err
	}
	if root.Size > size {
		return fmt.Errorf("%w: the root filesystem is %d MiB and slot partitions are %d MiB; raise slotMiB in the board profile", ErrTooSmall, root.Size>>20, size>>20)
	}
	return copyEntry(w, start, root)
}

// The UEFI family's chooser: loader.conf names the committed slot's entry
// as systemd-boot's default, and a trial is systemd-boot's one-shot entry,
// the EFI variable LoaderEntryOneShot, which systemd-boot deletes as it
// reads it, before it starts the kernel (docs/adr/0009).

func (uefi) Committed(bootDir string) (string, error) {
	data, err := os.ReadFile(filepath.Join(bootDir, loaderConf))
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "default cairn-"); ok && len(v) > 0 && (v[:1] == boot.SlotA || v[:1] == boot.SlotB) {
			return v[:1], nil
		}
	}
	return "", fmt.Errorf("%s names no slot as its default", loaderConf)
}

func (uefi) Disarm(bootDir string) error {
	if err := checkEFIVars(); err != nil {
		return err
	}
	return deleteEFIVar(efiOneShot)
}

func (uefi) Arm(bootDir, slot string) error {
	return setEFIVar(efiOneShot, entryName(slot))
}

// Commit rewrites loader.conf in place: the two versions have the same
// length and fit in one sector, so the disk holds the old or the new one,
// whole. A default chosen in the boot menu would override it, so it goes.
func (uefi) Commit(bootDir, slot string) error {
	if err := deleteEFIVar(efiDefault); err != nil {
		return err
	}
	if err := rewrite(filepath.Join(bootDir, loaderConf), []byte(boot.LoaderConf(slot))); err != nil {
		return fmt.Errorf("commit slot %s in %s: %w", slot, loaderConf, err)
	}
	return nil
}

const loaderConf = "loader/loader.conf"

func entryName(slot string) string { return "cairn-" + slot + ".conf" }

// uefiFile is where a slot's kernel or initramfs lies on the ESP.
func uefiFile(slot, name string) string { return slot + "/" + name }
