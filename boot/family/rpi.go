package family

import (
	"io"
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
	return t, t.AddData("boot.scr", 0o644, boot.UBootImage(script, uint32(p.Epoch.Unix())))
}

// Install writes the slot's FAT partition; U-Boot ignores its cmdline.txt,
// which says what the slot boots with.
func (uboot) Install(d Disk, s *Slot, slot string) error { return installFAT(d, s, slot) }

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
