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

	"github.com/cairn-os/cairn/boot"
	"github.com/cairn-os/cairn/boot/family"
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
var ErrTooSmall = family.ErrTooSmall

// diskID is the identifier init matches the boot disk by.
func (b *builder) diskID() string {
	if b.o.Board.Layout.Table == "gpt" {
		return b.guid("disk")
	}
	return fmt.Sprintf("%08x", b.volumeID("disk"))
}

func (b *builder) assemble(ctx context.Context) (*Result, error) {
	p := b.o.Board
	home, err := family.Of(p.Family)
	if err != nil {
		return nil, err
	}
	initMods, rootMods, err := b.modules()
	if err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp(filepath.Dir(b.o.Output), ".cairn-build-*")
	if err != nil {
		return nil, fmt.Errorf("%w: %w (check that the folder of %s exists and is writable)", ErrOutput, err, b.o.Output)
	}
	defer os.RemoveAll(work)

	root, err := b.rootTree(rootMods)
	if err != nil {
		return nil, err
	}
	sqPath := filepath.Join(work, boot.RootFile)
	if _, err := b.squashfs(root, sqPath); err != nil {
		return nil, err
	}
	initrd, err := b.initramfs(initMods)
	if err != nil {
		return nil, err
	}
	parts, err := b.parts(initrd, sqPath)
	if err != nil {
		return nil, err
	}
	slot, err := home.Slot(parts)
	if err != nil {
		return nil, err
	}
	disk := b.diskID()
	bootTree, err := home.Fresh(parts, disk)
	if err != nil {
		return nil, err
	}
	return b.writeImage(home, slot, bootTree, disk)
}

// parts gathers what the family arranges: the kernel, the initramfs, the
// root, the board's firmware files and device trees.
func (b *builder) parts(initrd []byte, root string) (*family.Parts, error) {
	p := b.o.Board
	kernel, err := b.kernelImage()
	if err != nil {
		return nil, err
	}
	parts := &family.Parts{Kernel: kernel, Initrd: initrd, Root: root, Firmware: map[string]string{}, DTBs: map[string]string{},
		Console: p.Console, Args: p.Cmdline, Version: b.o.Version, Epoch: b.o.Epoch}
	for _, fw := range p.Firmware {
		for src, dst := range fw.Map {
			file := filepath.Join(b.fwDirs[fw.Package], src)
			if _, err := os.Stat(file); err != nil {
				return nil, fmt.Errorf("board %s: package %s lacks %s: %w", p.Name, fw.Package, src, err)
			}
			parts.Firmware[dst] = file
		}
	}
	for _, d := range p.DeviceTrees {
		file, err := b.dtb(d)
		if err != nil {
			return nil, err
		}
		parts.DTBs[path.Base(d)] = file
	}
	return parts, nil
}

// writeImage writes a new image: the boot partition and the slot installed
// as slot A and as slot B, to a temporary file renamed into place at the end.
func (b *builder) writeImage(home family.Home, slot *family.Slot, bootTree *fstree.Tree, diskID string) (*Result, error) {
	layout := b.partitions()
	tmp, err := os.CreateTemp(filepath.Dir(b.o.Output), "."+filepath.Base(b.o.Output)+".*")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrOutput, err)
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
		return nil, fmt.Errorf("%w: %w", ErrOutput, err)
	}
	var bar *progress.Bar
	if b.o.Progress != nil {
		bar = progress.New(b.o.Progress, "writing partitions", bootTree.Size()+2*slot.Files.Size())
	}
	d := &imageDisk{w: bar.WriterAt(tmp), id: diskID, boot: bootTree, layout: layout}
	for _, s := range []string{boot.SlotA, boot.SlotB} {
		if err := home.Install(d, slot, s); err != nil {
			return nil, err
		}
	}
	res := &Result{Output: b.o.Output, Size: total, Kernel: b.kernel.Version}
	if _, err := b.writeFAT(d.w, layout[0], bootTree, "CAIRN-BOOT"); err != nil {
		return nil, err
	}
	for _, part := range layout {
		used := slot.Used
		if part.num == boot.PartBoot {
			used = bootTree.Size()
		}
		res.Partitions = append(res.Partitions, PartInfo{Num: part.num, Name: part.name, Size: part.size, Used: used})
	}
	if bar != nil {
		bar.Done()
	}
	if err := b.writeTable(tmp, layout, total, diskID); err != nil {
		return nil, err
	}
	if err := tmp.Sync(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrOutput, err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrOutput, err)
	}
	if err := os.Rename(tmp.Name(), b.o.Output); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrOutput, err)
	}
	ok = true
	return res, nil
}

// imageDisk is a new image file as the families see a disk.
type imageDisk struct {
	w      io.WriterAt
	id     string
	boot   *fstree.Tree
	layout []part
}

func (d *imageDisk) ID() string         { return d.id }
func (d *imageDisk) Boot() family.Files { return d.boot }
func (d *imageDisk) Partition(n int) (io.WriterAt, int64, int64, error) {
	for _, p := range d.layout {
		if p.num == n {
			return d.w, p.start, p.size, nil
		}
	}
	return nil, 0, 0, fmt.Errorf("the image has no partition %d", n)
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
