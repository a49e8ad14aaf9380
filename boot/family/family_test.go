package family

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/cairn-os/cairn/boot"
	"github.com/cairn-os/cairn/image/fstree"
)

// memDisk is a disk in memory: partitions of 1 MiB from 1 MiB on.
type memDisk struct {
	id   string
	boot *fstree.Tree
	data []byte
}

func newMemDisk(id string) *memDisk {
	return &memDisk{id: id, boot: fstree.New(), data: make([]byte, 5<<20)}
}

func (d *memDisk) ID() string  { return d.id }
func (d *memDisk) Boot() Files { return d.boot }
func (d *memDisk) WriteAt(p []byte, off int64) (int, error) {
	return copy(d.data[off:], p), nil
}
func (d *memDisk) Partition(n int) (w io.WriterAt, start, size int64, err error) {
	return d, int64(n) << 20, 1 << 20, nil
}

func testParts(t *testing.T) *Parts {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o644)
		return p
	}
	return &Parts{
		Kernel: file("vmlinuz", "kernel"), Initrd: []byte("initramfs"), Root: file("root", "hsqs root"),
		Firmware: map[string]string{"start4.elf": file("start4.elf", "firmware")},
		DTBs:     map[string]string{"board.dtb": file("board.dtb", "tree")},
		Console:  []string{"ttyS0,115200"}, Args: []string{"quiet"}, Version: "v1", Epoch: time.Unix(1780000000, 0),
	}
}

// TestSlotsFitAnywhere checks that a slot's files carry nothing of the slot
// or disk they will land in: each family's slot is the same files, and
// those name neither.
func TestSlotsFitAnywhere(t *testing.T) {
	want := map[boot.Family][]string{
		boot.UEFI:       {Initrd, Root, Kernel},
		boot.RPiTryboot: {"board.dtb", "config.txt", Initrd, Root, "start4.elf", Kernel},
		boot.RPiUBoot:   {"board.dtb", Initrd, Root, Kernel},
	}
	for _, f := range boot.Families {
		home, err := Of(f)
		if err != nil {
			t.Fatal(err)
		}
		s, err := home.Slot(testParts(t))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range s.Files.Walk() {
			if !e.Mode.IsRegular() {
				continue
			}
			names = append(names, e.Path)
			r, _ := e.Open()
			var b bytes.Buffer
			b.ReadFrom(r)
			r.Close()
			if strings.Contains(b.String(), boot.ArgSlot) || strings.Contains(b.String(), boot.ArgDisk) {
				t.Errorf("%s: %s names a slot or disk", f, e.Path)
			}
		}
		if !slices.Equal(names, want[f]) {
			t.Errorf("%s slot: %v, want %v", f, names, want[f])
		}
	}
}

// TestUEFIInstall installs one slot as A on one disk and as B on another:
// the ESP gets the slot's kernel and initramfs in the slot's folder and a
// loader entry naming slot and disk; the slot partition gets the root.
func TestUEFIInstall(t *testing.T) {
	home, _ := Of(boot.UEFI)
	s, err := home.Slot(testParts(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ slot, id string }{{boot.SlotA, "disk-one"}, {boot.SlotB, "disk-two"}} {
		d := newMemDisk(tc.id)
		if err := home.Install(d, s, tc.slot); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{tc.slot + "/vmlinuz", tc.slot + "/initrd.img"} {
			if _, ok := d.boot.Get(name); !ok {
				t.Errorf("slot %s: the ESP lacks %s", tc.slot, name)
			}
		}
		entry, ok := d.boot.Get("loader/entries/cairn-" + tc.slot + ".conf")
		if !ok || !strings.Contains(string(entry.Data), "cairn.slot="+tc.slot+" cairn.disk="+tc.id) || !strings.Contains(string(entry.Data), "linux /"+tc.slot+"/vmlinuz") {
			t.Errorf("slot %s loader entry: %q", tc.slot, entry.Data)
		}
		part := int64(boot.SlotPart(tc.slot)) << 20
		if got := string(d.data[part : part+9]); got != "hsqs root" {
			t.Errorf("slot %s partition starts %q, want the root", tc.slot, got)
		}
	}
	big := testParts(t)
	os.WriteFile(big.Root, make([]byte, 2<<20), 0o644)
	s, _ = home.Slot(big)
	if err := home.Install(newMemDisk("x"), s, boot.SlotA); !errors.Is(err, ErrTooSmall) || !strings.Contains(err.Error(), "raise slotMiB") {
		t.Errorf("a root larger than its partition: %v", err)
	}
}

// TestWriteFull: whole writes of the size asked but the last, whatever
// the reads; only io.EOF ends the copy, any other error (a cut stream's
// io.ErrUnexpectedEOF too) is passed on.
func TestWriteFull(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 1000)
	var w sizes
	if err := WriteFull(&w, iotest.OneByteReader(bytes.NewReader(data)), 4096); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(w.sizes, []int{4096, 4096, 1808}) || !bytes.Equal(w.data, data) {
		t.Errorf("writes of %v", w.sizes)
	}
	cut := io.MultiReader(bytes.NewReader(data[:100]), iotest.ErrReader(io.ErrUnexpectedEOF))
	if err := WriteFull(&w, cut, 4096); err != io.ErrUnexpectedEOF {
		t.Errorf("a cut stream: %v", err)
	}
}

type sizes struct {
	sizes []int
	data  []byte
}

func (s *sizes) Write(p []byte) (int, error) {
	s.sizes = append(s.sizes, len(p))
	s.data = append(s.data, p...)
	return len(p), nil
}
