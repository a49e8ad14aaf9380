// Package family is the one home of each boot family's knowledge (one file
// per family): the boot partition of a new image, which files make a slot,
// and how a slot is installed as slot A or B of a disk. A built slot's
// files are the same bytes whichever slot and disk they land in; what tells
// slots apart is made at install: the slot's name and the disk's
// identifier on the kernel command line, and on a Raspberry Pi the FAT file
// system around the files, with its label and volume id. The builder uses it to
// write new images; an updater on the device will use it to install a slot
// from a bundle. It writes through the Disk it is given and knows nothing
// of partition tables.
package family

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"time"

	"github.com/cairn-os/cairn/boot"
	"github.com/cairn-os/cairn/image/fat"
	"github.com/cairn-os/cairn/image/fstree"
)

// ErrTooSmall is wrapped when a slot does not fit its partition.
var ErrTooSmall = errors.New("partition too small")

// Parts are what a build made and unpacked for one board: the family
// arranges them into a slot and a boot partition.
type Parts struct {
	Kernel   string            // the kernel image file
	Initrd   []byte            // the initramfs
	Root     string            // the root squashfs file
	Firmware map[string]string // the board's firmware files: name on the card -> file
	DTBs     map[string]string // device trees: name on the card -> file
	Console  []string          // console= values, the last the primary
	Args     []string          // the board's other kernel arguments
	Version  string
	Epoch    time.Time // every file time
}

// Slot is a built slot: everything an update replaces.
type Slot struct {
	Family  boot.Family
	Files   *fstree.Tree // by name: kernel, initramfs, root, and what the family adds
	Console []string     // console= values
	Args    []string     // kernel arguments besides the slot's and the disk's
	Version string
	Epoch   time.Time
	// Used is what the slot puts into its partition, in bytes.
	Used int64
}

// Slot file names, the same in every family.
const (
	Kernel = "vmlinuz"
	Initrd = "initrd.img"
	Root   = boot.RootFile
)

// Place is a file in an image: its partition and its path in that
// partition's FAT.
type Place struct {
	Part int
	Path string
}

// InitrdPlaces are where a slot's initramfs lies in an image, whatever its
// family: on the ESP in the slot's folder (UEFI), or in the slot's own
// partition (Raspberry Pi). A reader that does not know the family yet
// (cairn vm, for the build's description) tries them in turn.
func InitrdPlaces(slot string) []Place {
	return []Place{{boot.PartBoot, uefiFile(slot, Initrd)}, {boot.SlotPart(slot), Initrd}}
}

// Disk is where Install writes.
type Disk interface {
	// ID is the identifier init finds the disk by (cairn.disk=).
	ID() string
	// Boot is the boot partition's files (the ESP, or the Pi's first
	// partition), which Install adds to.
	Boot() Files
	// Partition is partition n: where it starts on the disk and its size.
	Partition(n int) (w io.WriterAt, start, size int64, err error)
}

// Files are a boot partition's files.
type Files interface {
	Put(name string, e *fstree.Entry) error
}

// Home is what one family knows.
type Home interface {
	// Slot arranges the parts into a slot.
	Slot(p *Parts) (*Slot, error)
	// Fresh is the boot partition of a new image, before any slot is
	// installed; slot A is the one it boots.
	Fresh(p *Parts, diskID string) (*fstree.Tree, error)
	// Install writes s as slot (boot.SlotA or boot.SlotB) of d.
	Install(d Disk, s *Slot, slot string) error
}

// Of is the home of a family.
func Of(f boot.Family) (Home, error) {
	switch f {
	case boot.UEFI:
		return uefi{}, nil
	case boot.RPiTryboot:
		return tryboot{}, nil
	case boot.RPiUBoot:
		return uboot{}, nil
	}
	return nil, f.Check()
}

// common is the slot every family starts from: kernel, initramfs, root.
func common(f boot.Family, p *Parts) (*Slot, error) {
	t := fstree.New()
	err := errors.Join(
		t.AddFile(Kernel, 0o644, p.Kernel),
		t.AddData(Initrd, 0o644, p.Initrd),
		t.AddFile(Root, 0o644, p.Root),
	)
	return &Slot{Family: f, Files: t, Console: p.Console, Args: p.Args, Version: p.Version, Epoch: p.Epoch}, err
}

// addAll adds files (name on the card -> file) to t.
func addAll(t *fstree.Tree, files map[string]string) error {
	for name, src := range files {
		if err := t.AddFile(name, 0o644, src); err != nil {
			return err
		}
	}
	return nil
}

// cmdline is the kernel command line of slot on disk.
func (s *Slot) cmdline(slot, diskID string) string {
	return boot.Cmdline(slot, diskID, s.Console, s.Args)
}

// writeFAT writes t as a FAT32 file system over partition n of d.
func writeFAT(d Disk, n int, t *fstree.Tree, label string, mtime time.Time) error {
	w, start, size, err := d.Partition(n)
	if err != nil {
		return err
	}
	err = fat.Write(io.NewOffsetWriter(w, start), t, fat.Options{
		Size: size, Label: label, VolumeID: volumeID(d.ID(), label), HiddenSecs: uint32(start / 512), ModTime: mtime,
	})
	if errors.Is(err, fat.ErrTooSmall) {
		return fmt.Errorf("%w: partition %d (%s): %w; raise its size in the board profile", ErrTooSmall, n, label, err)
	}
	return err
}

// volumeID derives a FAT volume's serial from the disk and its label, so
// that each is its own and a rebuild gives the same.
func volumeID(diskID, label string) uint32 {
	return crc32.ChecksumIEEE([]byte(diskID + "\x00" + label))
}
