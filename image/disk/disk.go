// Package disk writes a new disk image from a built slot: the partition
// table of the board's family, its boot partition, and the slot installed
// as slot A and as slot B, through the family's own code (boot/family).
// Identifiers (the disk's, the partitions' GUIDs, the boot volume's id)
// derive from the digest of the build's inputs, so the same inputs give
// the same bytes. The image is written to a temporary file and renamed
// into place only when all went well. It is one output of a build among
// others to come (a netboot folder, an update bundle).
package disk

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/cairn-os/cairn/boards"
	"github.com/cairn-os/cairn/boot"
	"github.com/cairn-os/cairn/boot/family"
	"github.com/cairn-os/cairn/image/fat"
	"github.com/cairn-os/cairn/image/fstree"
	"github.com/cairn-os/cairn/internal/progress"
)

// ErrOutput is wrapped when the output file cannot be written.
var ErrOutput = errors.New("cannot write the output")

const (
	mib         = 1 << 20
	sectorSize  = 512
	firstOffset = 1 * mib // partitions start 1 MiB in
)

// Input is what an image is made of.
type Input struct {
	Board *boards.Profile
	Parts *family.Parts // what the family arranges into the boot partition
	Slot  *family.Slot  // installed as slot A and as slot B
	ID    [32]byte      // digest of the build's inputs
}

// Result describes what was written.
type Result struct {
	Output     string
	Size       int64
	Partitions []PartInfo
}

// PartInfo is one partition of the image.
type PartInfo struct {
	Num        int
	Name       string
	Size, Used int64
}

// Write writes the image to output; progress, if not nil, shows a bar.
func Write(in *Input, output string, progress io.Writer) (*Result, error) {
	home, err := family.Of(in.Board.Family)
	if err != nil {
		return nil, err
	}
	id := in.diskID()
	bootTree, err := home.Fresh(in.Parts, id)
	if err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(output), "."+filepath.Base(output)+".*")
	if err != nil {
		return nil, fmt.Errorf("%w: %w (check that the folder of %s exists and is writable)", ErrOutput, err, output)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	res, err := in.write(tmp, home, bootTree, id, progress)
	if err != nil {
		return nil, err
	}
	if err := errors.Join(tmp.Sync(), tmp.Close()); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrOutput, err)
	}
	if err := os.Rename(tmp.Name(), output); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrOutput, err)
	}
	ok = true
	res.Output = output
	return res, nil
}

// write lays out the partitions, installs the slot as A and B, writes the
// boot partition and then the table.
func (in *Input) write(f *os.File, home family.Home, bootTree *fstree.Tree, id string, out io.Writer) (*Result, error) {
	layout := in.partitions()
	total := layout[len(layout)-1].end() + firstOffset
	if err := f.Truncate(total); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrOutput, err)
	}
	var bar *progress.Bar
	if out != nil {
		bar = progress.New(out, "writing partitions", bootTree.Size()+2*in.Slot.Files.Size())
	}
	d := &imageDisk{w: bar.WriterAt(f), id: id, boot: bootTree, layout: layout}
	for _, s := range []string{boot.SlotA, boot.SlotB} {
		if err := home.Install(d, in.Slot, s); err != nil {
			return nil, err
		}
	}
	if err := in.writeBoot(d.w, layout[0], bootTree); err != nil {
		return nil, err
	}
	if bar != nil {
		bar.Done()
	}
	if err := in.writeTable(f, layout, total, id); err != nil {
		return nil, err
	}
	res := &Result{Size: total}
	for _, p := range layout {
		used := in.Slot.Used
		if p.num == boot.PartBoot {
			used = bootTree.Size()
		}
		res.Partitions = append(res.Partitions, PartInfo{Num: p.num, Name: p.name, Size: p.size, Used: used})
	}
	return res, nil
}

// imageDisk is the new image as the families see a disk.
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

type part struct {
	num         int
	name        string
	start, size int64
}

func (p part) end() int64 { return p.start + p.size }

// partitions lays out boot, slot A and slot B; the data partition is made by
// init on first boot in the space after them (the whole card or disk).
func (in *Input) partitions() []part {
	l := in.Board.Layout
	boot1 := part{num: boot.PartBoot, name: boot.PartNames[boot.PartBoot], start: firstOffset, size: int64(l.Boot) * mib}
	a := part{num: boot.PartSlotA, name: boot.PartNames[boot.PartSlotA], start: boot1.end(), size: int64(l.Slot) * mib}
	b := part{num: boot.PartSlotB, name: boot.PartNames[boot.PartSlotB], start: a.end(), size: int64(l.Slot) * mib}
	return []part{boot1, a, b}
}

// writeBoot writes the boot partition's FAT file system.
func (in *Input) writeBoot(w io.WriterAt, p part, t *fstree.Tree) error {
	const label = "CAIRN-BOOT"
	err := fat.Write(io.NewOffsetWriter(w, p.start), t, fat.Options{
		Size: p.size, Label: label, VolumeID: in.volumeID(label), HiddenSecs: uint32(p.start / sectorSize), ModTime: in.Parts.Epoch,
	})
	if errors.Is(err, fat.ErrTooSmall) {
		return fmt.Errorf("%w: partition %d (%s): %w; raise bootMiB in the board profile", family.ErrTooSmall, p.num, label, err)
	}
	return err
}

// diskID is the identifier init finds the boot disk by: the GPT disk GUID,
// or the MBR disk id.
func (in *Input) diskID() string {
	if in.Board.Family.Table() == "gpt" {
		return in.guid("disk")
	}
	return fmt.Sprintf("%08x", in.volumeID("disk"))
}

// derived returns bytes derived from the build's digest and a purpose.
func (in *Input) derived(purpose string, n int) []byte {
	h := sha256.Sum256(append(in.ID[:], purpose...))
	return h[:n]
}

func (in *Input) guid(purpose string) string {
	u := in.derived(purpose, 16)
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	x := hex.EncodeToString(u)
	return fmt.Sprintf("%s-%s-%s-%s-%s", x[0:8], x[8:12], x[12:16], x[16:20], x[20:32])
}

func (in *Input) volumeID(purpose string) uint32 {
	return binary.LittleEndian.Uint32(in.derived(purpose, 4))
}
