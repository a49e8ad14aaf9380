package family

import (
	"fmt"

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
	return t, t.AddData("loader/loader.conf", 0o644, []byte(boot.LoaderConf(boot.SlotA)))
}

// Install puts the kernel and initramfs on the ESP under the slot's folder
// with the slot's loader entry, and the root into the slot partition.
func (uefi) Install(d Disk, s *Slot, slot string) error {
	files := d.Boot()
	for _, name := range []string{Kernel, Initrd} {
		e, _ := s.Files.Get(name)
		if err := files.Put(slot+"/"+name, e); err != nil {
			return err
		}
	}
	entry := boot.LoaderEntry(slot, s.Version, s.cmdline(slot, d.ID()))
	if err := files.Put("loader/entries/cairn-"+slot+".conf", &fstree.Entry{Mode: 0o644, Data: []byte(entry), Size: int64(len(entry))}); err != nil {
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
