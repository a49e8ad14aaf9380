package family

import (
	"fmt"
	"io"
	"math"

	"github.com/cairn-os/cairn/boot"
	"github.com/cairn-os/cairn/image/fstree"
)

// Chooser is how a running node chooses the slot its next boots use: the
// committed slot, which boots until another is committed, and a one-shot
// trial of the other slot, which the boot firmware or loader itself
// forgets after one boot, so that a trial slot that never comes up falls
// back to the committed one without help from the new system. Its methods
// take the boot partition's mount point.
type Chooser interface {
	// Committed is the slot that boots when no trial is armed.
	Committed(bootDir string) (string, error)
	// Disarm cancels any trial armed, before a slot is written, and fails
	// when no trial could be armed afterwards either.
	Disarm(bootDir string) error
	// Arm makes the next boot, and only the next, boot slot.
	Arm(bootDir, slot string) error
	// Commit makes slot the committed one. It survives a power cut at any
	// instant: afterwards one of the two slots is committed, never none.
	Commit(bootDir, slot string) error
}

// ChooserOf is the chooser of a family, or an error saying that the
// family cannot be updated on a running node yet.
func ChooserOf(f boot.Family) (Chooser, error) {
	switch f {
	case boot.UEFI:
		return uefi{}, nil
	case boot.RPiUBoot:
		return uboot{}, nil
	case boot.RPiTryboot:
		return tryboot{}, nil
	}
	return nil, fmt.Errorf("over-the-air updates are not supported on %s boards; update them by flashing a new image", f)
}

// InstallOrder is the order in which the family's Install reads the
// slot's files: the order an update bundle carries them in, so that a
// node installs straight from the stream.
func InstallOrder(h Home, s *Slot) ([]string, error) {
	var order []string
	t := fstree.New()
	for _, e := range s.Files.Walk() {
		if !e.Mode.IsRegular() {
			continue
		}
		e := *e
		name, size := e.Path, e.Size
		e.Source, e.Data = "", nil
		e.Content = func() (io.ReadCloser, error) {
			order = append(order, name)
			return io.NopCloser(io.LimitReader(zeros{}, size)), nil
		}
		if err := t.Put(e.Path, &e); err != nil {
			return nil, err
		}
	}
	probe := *s
	probe.Files = t
	if err := h.Install(&orderDisk{boot: fstree.New()}, &probe, boot.SlotB); err != nil {
		return nil, err
	}
	return order, nil
}

// orderDisk is a disk that reads what is put on it at once and keeps
// nothing.
type orderDisk struct{ boot *fstree.Tree }

func (d *orderDisk) ID() string  { return "order" }
func (d *orderDisk) Boot() Files { return drain{} }
func (d *orderDisk) Partition(n int) (io.WriterAt, int64, int64, error) {
	return discard{}, 0, math.MaxInt64 / 2, nil
}

type drain struct{}

func (drain) Put(name string, e *fstree.Entry) error {
	r, err := e.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	_, err = io.Copy(io.Discard, r)
	return err
}

type discard struct{}

func (discard) WriteAt(p []byte, off int64) (int, error) { return len(p), nil }

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
