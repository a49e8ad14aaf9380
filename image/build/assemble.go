package build

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/cairn-os/cairn/boards"
	"github.com/cairn-os/cairn/boot"
	"github.com/cairn-os/cairn/image/fat"
	"github.com/cairn-os/cairn/image/fstree"
	"github.com/cairn-os/cairn/image/squashfs"
	"github.com/cairn-os/cairn/internal/progress"
	"github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/diskfs/go-diskfs/partition/mbr"
)

const (
	mib         = 1 << 20
	sectorSize  = 512
	firstOffset = 1 * mib // partitions start 1 MiB in
)

// ErrTooSmall is wrapped when content does not fit its partition.
var ErrTooSmall = errors.New("partition too small")

// diskID is the identifier init matches the boot disk by.
func (b *builder) diskID() string {
	if b.o.Board.Layout.Table == "gpt" {
		return b.guid("disk")
	}
	return fmt.Sprintf("%08x", b.volumeID("disk"))
}

func (b *builder) assemble(ctx context.Context) (*Result, error) {
	p := b.o.Board
	initMods, rootMods, err := b.modules()
	if err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp(filepath.Dir(b.o.Output), ".cairn-build-*")
	if err != nil {
		return nil, fmt.Errorf("%w: %v (check that the folder of %s exists and is writable)", ErrOutput, err, b.o.Output)
	}
	defer os.RemoveAll(work)

	root, err := b.rootTree(rootMods)
	if err != nil {
		return nil, err
	}
	sqPath := filepath.Join(work, boot.RootFile)
	sqSize, err := b.squashfs(root, sqPath)
	if err != nil {
		return nil, err
	}
	initrd, err := b.initramfs(initMods)
	if err != nil {
		return nil, err
	}
	kernel, err := b.kernelImage()
	if err != nil {
		return nil, err
	}

	layout := b.partitions()
	var bootTree *fstree.Tree
	slotTrees := map[int]*fstree.Tree{}
	disk := b.diskID()
	switch p.Family {
	case boards.FamilyUEFI:
		bootTree, err = b.espTree(kernel, initrd, disk)
	default:
		bootTree, err = b.rpiBootTree(disk)
		for _, slot := range []string{boot.SlotA, boot.SlotB} {
			if err == nil {
				slotTrees[boot.SlotPart(slot)], err = b.rpiSlotTree(slot, disk, kernel, initrd, sqPath)
			}
		}
	}
	if err != nil {
		return nil, err
	}

	tmp, err := os.CreateTemp(filepath.Dir(b.o.Output), "."+filepath.Base(b.o.Output)+".*")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrOutput, err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	total := layout[len(layout)-1].end() + firstOffset
	if err := tmp.Truncate(total); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrOutput, err)
	}
	res := &Result{Output: b.o.Output, Size: total, Kernel: b.kernel.Version}
	var bar *progress.Bar
	if b.o.Progress != nil {
		content := bootTree.Size()
		for _, part := range layout[1:] {
			if t := slotTrees[part.num]; t != nil {
				content += t.Size()
			} else {
				content += sqSize
			}
		}
		bar = progress.New(b.o.Progress, "writing partitions", content)
	}
	out := bar.WriterAt(tmp)
	for _, part := range layout {
		info := PartInfo{Num: part.num, Name: part.name, Size: part.size}
		switch {
		case part.num == boot.PartBoot:
			info.Used, err = b.writeFAT(out, part, bootTree, "CAIRN-BOOT")
		case p.Family == boards.FamilyUEFI:
			if sqSize > part.size {
				return nil, fmt.Errorf("%w: the root filesystem is %d MiB and slot partitions are %d MiB; raise slotMiB in the board profile", ErrTooSmall, sqSize/mib, part.size/mib)
			}
			info.Used, err = sqSize, copyInto(out, part.start, sqPath)
		default:
			label := "CAIRN-" + strings.ToUpper(slotOf(part.num))
			info.Used, err = b.writeFAT(out, part, slotTrees[part.num], label)
		}
		if err != nil {
			return nil, err
		}
		res.Partitions = append(res.Partitions, info)
	}
	if bar != nil {
		bar.Done()
	}
	if err := b.writeTable(tmp, layout, total, disk); err != nil {
		return nil, err
	}
	if err := tmp.Sync(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrOutput, err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrOutput, err)
	}
	if err := os.Rename(tmp.Name(), b.o.Output); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrOutput, err)
	}
	ok = true
	return res, nil
}

func slotOf(part int) string {
	if part == boot.PartSlotB {
		return boot.SlotB
	}
	return boot.SlotA
}

func (b *builder) squashfs(t *fstree.Tree, out string) (int64, error) {
	f, err := os.Create(out)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrOutput, err)
	}
	defer f.Close()
	var bar *progress.Bar
	opt := squashfs.Options{Compression: b.o.Board.Squashfs, ModTime: b.o.Epoch, Workers: b.workers()}
	if b.o.Progress != nil {
		bar = progress.New(b.o.Progress, "root filesystem (squashfs "+b.o.Board.Squashfs+")", 0)
		opt.Progress = bar.Add
	}
	n, err := squashfs.Write(f, t, opt)
	if err != nil {
		return 0, err
	}
	if bar != nil {
		bar.Done()
	}
	return n, nil
}

type part struct {
	num         int
	name        string
	start, size int64
}

func (p part) end() int64 { return p.start + p.size }

// partitions lays out boot, slot A and slot B; the data partition is made by
// init on first boot in the space after them (the whole card or disk).
func (b *builder) partitions() []part {
	l := b.o.Board.Layout
	boot1 := part{num: boot.PartBoot, name: boot.PartNames[boot.PartBoot], start: firstOffset, size: int64(l.Boot) * mib}
	a := part{num: boot.PartSlotA, name: boot.PartNames[boot.PartSlotA], start: boot1.end(), size: int64(l.Slot) * mib}
	bb := part{num: boot.PartSlotB, name: boot.PartNames[boot.PartSlotB], start: a.end(), size: int64(l.Slot) * mib}
	return []part{boot1, a, bb}
}

func (b *builder) writeFAT(f io.WriterAt, p part, t *fstree.Tree, label string) (int64, error) {
	err := fat.Write(io.NewOffsetWriter(f, p.start), t, fat.Options{
		Size: p.size, Label: label, VolumeID: b.volumeID(label), HiddenSecs: uint32(p.start / sectorSize), ModTime: b.o.Epoch,
	})
	if errors.Is(err, fat.ErrTooSmall) {
		return 0, fmt.Errorf("%w: partition %d (%s): %v; raise its size in the board profile", ErrTooSmall, p.num, label, err)
	}
	return t.Size(), err
}

func copyInto(f io.WriterAt, at int64, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	_, err = io.CopyBuffer(io.NewOffsetWriter(f, at), in, make([]byte, 4*mib))
	return err
}

func (b *builder) writeTable(f *os.File, layout []part, total int64, disk string) error {
	if b.o.Board.Layout.Table == "gpt" {
		rootType := map[string]gpt.Type{"arm64": gpt.Type("B921B045-1DF0-41C3-AF44-4C6F280D3FAE"), "amd64": gpt.Type("4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709")}[b.arch]
		t := &gpt.Table{LogicalSectorSize: sectorSize, PhysicalSectorSize: sectorSize, ProtectiveMBR: true, GUID: disk}
		for _, p := range layout {
			typ := rootType
			if p.num == boot.PartBoot {
				typ = gpt.EFISystemPartition
			}
			t.Partitions = append(t.Partitions, &gpt.Partition{
				Index: p.num, Start: uint64(p.start / sectorSize), End: uint64(p.end()/sectorSize - 1), Size: uint64(p.size),
				Type: typ, Name: p.name, GUID: b.guid(p.name),
			})
		}
		return t.Write(f, total)
	}
	t := &mbr.Table{LogicalSectorSize: sectorSize, PhysicalSectorSize: sectorSize}
	for _, p := range layout {
		t.Partitions = append(t.Partitions, &mbr.Partition{
			Index: p.num, Bootable: p.num == boot.PartBoot, Type: mbr.Fat32LBA,
			Start: uint32(p.start / sectorSize), Size: uint32(p.size / sectorSize),
		})
	}
	if err := t.Write(f, total); err != nil {
		return err
	}
	id, _ := hex.DecodeString(disk)
	var le [4]byte
	binary.LittleEndian.PutUint32(le[:], binary.BigEndian.Uint32(id))
	_, err := f.WriteAt(le[:], 440)
	return err
}

// espTree is the EFI system partition: systemd-boot, one loader entry per
// slot, and each slot's kernel and initramfs.
func (b *builder) espTree(kernel string, initrd []byte, disk string) (*fstree.Tree, error) {
	t := fstree.New()
	if err := b.firmwareFiles(t); err != nil {
		return nil, err
	}
	if err := t.AddData("loader/loader.conf", 0o644, []byte(boot.LoaderConf(boot.SlotA))); err != nil {
		return nil, err
	}
	for _, slot := range []string{boot.SlotA, boot.SlotB} {
		cmd := boot.Cmdline(slot, disk, b.o.Board.Console, b.o.Board.Cmdline)
		entry := boot.LoaderEntry(slot, b.o.Version, cmd)
		if err := t.AddData("loader/entries/cairn-"+slot+".conf", 0o644, []byte(entry)); err != nil {
			return nil, err
		}
		if err := t.AddFile(slot+"/vmlinuz", 0o644, kernel); err != nil {
			return nil, err
		}
		if err := t.AddData(slot+"/initrd.img", 0o644, initrd); err != nil {
			return nil, err
		}
	}
	return t, nil
}

func (b *builder) firmwareFiles(t *fstree.Tree) error {
	for _, fw := range b.o.Board.Firmware {
		for src, dst := range fw.Map {
			if err := t.AddFile(dst, 0o644, filepath.Join(b.fwDirs[fw.Package], src)); err != nil {
				return fmt.Errorf("board %s: package %s lacks %s: %w", b.o.Board.Name, fw.Package, src, err)
			}
		}
	}
	return nil
}

// rpiBootTree is the first partition of a Raspberry Pi card: autoboot.txt for
// tryboot boards; firmware, U-Boot, device trees and boot.scr for the Pi 3.
func (b *builder) rpiBootTree(disk string) (*fstree.Tree, error) {
	t := fstree.New()
	if b.o.Board.Family == boards.FamilyRPiTryboot {
		return t, t.AddData("autoboot.txt", 0o644, []byte(boot.Autoboot(boot.SlotA)))
	}
	if err := b.firmwareFiles(t); err != nil {
		return nil, err
	}
	if err := b.addDTBs(t); err != nil {
		return nil, err
	}
	if err := t.AddData("config.txt", 0o644, []byte(boot.RPiUBootConfig())); err != nil {
		return nil, err
	}
	script := boot.UBootScript(b.o.Board.Console, disk, b.o.Board.Cmdline)
	return t, t.AddData("boot.scr", 0o644, boot.UBootImage(script, uint32(b.o.Epoch.Unix())))
}

func (b *builder) addDTBs(t *fstree.Tree) error {
	for _, d := range b.o.Board.DeviceTrees {
		src, err := b.dtb(d)
		if err != nil {
			return err
		}
		if err := t.AddFile(path.Base(d), 0o644, src); err != nil {
			return err
		}
	}
	return nil
}

// rpiSlotTree is one slot partition of a Raspberry Pi card.
func (b *builder) rpiSlotTree(slot, disk, kernel string, initrd []byte, rootfs string) (*fstree.Tree, error) {
	t := fstree.New()
	if b.o.Board.Family == boards.FamilyRPiTryboot {
		if err := b.firmwareFiles(t); err != nil {
			return nil, err
		}
		if err := t.AddData("config.txt", 0o644, []byte(boot.RPiConfig())); err != nil {
			return nil, err
		}
	}
	if err := b.addDTBs(t); err != nil {
		return nil, err
	}
	cmd := boot.Cmdline(slot, disk, b.o.Board.Console, b.o.Board.Cmdline)
	files := []error{
		t.AddData("cmdline.txt", 0o644, []byte(cmd+"\n")),
		t.AddFile("vmlinuz", 0o644, kernel),
		t.AddData("initrd.img", 0o644, initrd),
		t.AddFile(boot.RootFile, 0o644, rootfs),
	}
	return t, errors.Join(files...)
}
