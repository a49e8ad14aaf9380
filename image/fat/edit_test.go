package fat

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairn-os/cairn/image/fstree"
)

// esp is an ESP as images have it: two slots' kernels and initramfs.
func esp(t *testing.T, kernel int) (string, map[string][]byte) {
	t.Helper()
	files := map[string][]byte{
		"EFI/BOOT/BOOTAA64.EFI":       bytes.Repeat([]byte{0xAB}, 90000),
		"loader/loader.conf":          []byte("default cairn-a.conf\n"),
		"loader/entries/cairn-a.conf": []byte("title Cairn (slot a)\n"),
		"loader/entries/cairn-b.conf": []byte("title Cairn (slot b)\n"),
		"a/vmlinuz":                   random(kernel),
		"a/initrd.img":                random(300000),
		"b/vmlinuz":                   random(kernel),
		"b/initrd.img":                random(300000),
	}
	tr := fstree.New()
	for p, data := range files {
		if err := tr.AddData(p, 0o644, data); err != nil {
			t.Fatal(err)
		}
	}
	return writeImage(t, tr, 40<<20), files
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// check fails unless fsck.fat finds the file system clean and the files
// hold want (mtools reads them: a reader that is not ours).
func check(t *testing.T, img string, want map[string][]byte) {
	t.Helper()
	if out, err := exec.Command("fsck.fat", "-n", img).CombinedOutput(); err != nil {
		t.Fatalf("fsck.fat -n: %v\n%s", err, out)
	}
	for p, data := range want {
		got, err := exec.Command("mtype", "-i", img, "::"+p).Output()
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s: %d bytes (%v), want %d", p, len(got), err, len(data))
		}
	}
}

func replace(t *testing.T, dev Device, path string, data []byte) error {
	t.Helper()
	return stage(t, dev, map[string][]byte{path: data})
}

// stage stages the files in the order of their names, then commits them.
func stage(t *testing.T, dev Device, files map[string][]byte) error {
	t.Helper()
	e, err := Edit(dev, 40<<20)
	if err != nil {
		return err
	}
	for _, path := range slices.Sorted(maps.Keys(files)) {
		data := files[path]
		err := e.Stage(path, int64(len(data)), time.Unix(1780000000, 0), func(w io.Writer) error {
			for p := data; len(p) > 0; p = p[min(len(p), 1<<20):] { // the updater writes in large pieces
				if _, err := w.Write(p[:min(len(p), 1<<20)]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return e.Commit()
}

func TestReplace(t *testing.T) {
	img, files := esp(t, 3<<20)
	f := open(t, img)
	// Larger, smaller, empty, and larger again; the other slot untouched.
	for _, n := range []int{5<<20 + 17, 1000, 0, 4 << 20} {
		files["b/vmlinuz"] = random(n)
		if err := replace(t, f, "b/VMLINUZ", files["b/vmlinuz"]); err != nil {
			t.Fatal(err)
		}
		files["loader/entries/cairn-b.conf"] = []byte("title Cairn 2 (slot b)\n")
		if err := replace(t, f, "loader/entries/cairn-b.conf", files["loader/entries/cairn-b.conf"]); err != nil {
			t.Fatal(err)
		}
		check(t, img, files)
	}
	e, _ := Edit(f, 40<<20)
	free := e.Free()
	for _, missing := range []string{"c/vmlinuz", "b/nope", "b", "loader/entries"} {
		if err := e.Replace(missing, 1, time.Now(), func(io.Writer) error { return nil }); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: %v, want not found", missing, err)
		}
	}
	if err := e.Replace("b/vmlinuz", 100<<20, time.Now(), func(io.Writer) error { return nil }); !errors.Is(err, ErrTooSmall) {
		t.Errorf("a file larger than the file system: %v", err)
	}
	// The stream must be exactly the size it was given.
	for _, n := range []int{99, 101} {
		err := e.Replace("b/initrd.img", 100, time.Now(), func(w io.Writer) error { _, err := w.Write(make([]byte, n)); return err })
		if err == nil {
			t.Errorf("%d bytes for a 100-byte file: no error", n)
		}
	}
	if e, _ := Edit(f, 40<<20); e.Free() != free {
		t.Errorf("%d bytes free after failed edits, want %d as before", e.Free(), free)
	}
	check(t, img, files)
}

// TestReplaceWithoutRoom: the new file does not fit beside the old one, so
// the old one goes first.
func TestReplaceWithoutRoom(t *testing.T) {
	img, files := esp(t, 12<<20)
	f := open(t, img)
	e, err := Edit(f, 40<<20)
	if err != nil {
		t.Fatal(err)
	}
	if e.Free() >= 16<<20 {
		t.Fatalf("%d MiB free: the test wants less than the new file", e.Free()>>20)
	}
	files["b/vmlinuz"] = random(16 << 20)
	if err := replace(t, f, "b/vmlinuz", files["b/vmlinuz"]); err != nil {
		t.Fatal(err)
	}
	check(t, img, files)

	// A kernel that fits beside its old one, then an initramfs that grows
	// into more than is left: it fits once the old kernel's clusters are
	// free, and Stage commits the kernel to free them.
	if e, err = Edit(f, 40<<20); err != nil {
		t.Fatal(err)
	}
	files["b/vmlinuz"] = random(4 << 20)
	files["b/initrd.img"] = random(int(e.Free()) - 2<<20)
	for _, p := range []string{"b/vmlinuz", "b/initrd.img"} {
		data := files[p]
		if err := e.Stage(p, int64(len(data)), time.Now(), func(w io.Writer) error { _, err := w.Write(data); return err }); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Commit(); err != nil {
		t.Fatal(err)
	}
	check(t, img, files)

	// A file that fits not even once the staged files' old copies are
	// free is refused before those are committed: the kernel stays old.
	if e, err = Edit(f, 40<<20); err != nil {
		t.Fatal(err)
	}
	kernel := random(1 << 20)
	if err := e.Stage("b/vmlinuz", int64(len(kernel)), time.Now(), func(w io.Writer) error { _, err := w.Write(kernel); return err }); err != nil {
		t.Fatal(err)
	}
	err = e.Stage("b/initrd.img", 64<<20, time.Now(), func(io.Writer) error { t.Error("a refused file was written"); return nil })
	if !errors.Is(err, ErrTooSmall) || !strings.Contains(err.Error(), "more once the files before it are in") {
		t.Errorf("a file larger than all there could be: %v, want %v and what would come free", err, ErrTooSmall)
	}
	check(t, img, files)
}

// cutDevice stops writing after a number of writes, as a power cut does;
// its syncs fail from then on. If lose, the cut also undoes the writes
// since the last sync but the latest, as a disk that had them in its
// cache and wrote them in another order: what a missing sync exposes.
type cutDevice struct {
	*os.File
	left   int
	writes int
	lose   bool
	undo   []undo
}

type undo struct {
	off int64
	old []byte
}

var errCut = errors.New("power cut")

func (d *cutDevice) WriteAt(p []byte, off int64) (int, error) {
	if err := d.cut(); err != nil {
		return 0, err
	}
	d.left--
	d.writes++
	if d.lose {
		old := make([]byte, len(p))
		d.File.ReadAt(old, off)
		d.undo = append(d.undo, undo{off, old})
	}
	return d.File.WriteAt(p, off)
}

func (d *cutDevice) Sync() error {
	if err := d.cut(); err != nil {
		return err
	}
	d.undo = nil
	return d.File.Sync()
}

func (d *cutDevice) cut() error {
	if d.left != 0 {
		return nil
	}
	for i := len(d.undo) - 2; i >= 0; i-- {
		d.File.WriteAt(d.undo[i].old, d.undo[i].off)
	}
	d.undo = nil
	return errCut
}

// TestReplacePowerCut cuts an edit of two files after each of its writes
// in turn: each file is the old or the new one, the others are untouched,
// the next Edit leaves fsck.fat nothing to mend, and a later edit succeeds.
func TestReplacePowerCut(t *testing.T) {
	for _, tc := range []struct {
		name   string
		kernel int // the sizes of the old kernels
		empty  bool
	}{{"beside the old files", 2 << 20, false}, {"the old kernel let go first", 12 << 20, true}} {
		t.Run(tc.name, func(t *testing.T) {
			img, files := esp(t, tc.kernel)
			pristine, _ := os.ReadFile(img)
			neu := map[string][]byte{"b/vmlinuz": random(16 << 20), "b/initrd.img": random(200000)}
			count := &cutDevice{File: open(t, img), left: -1}
			if err := stage(t, count, neu); err != nil {
				t.Fatal(err)
			}
			count.Close()
			var leaks int
			for i := range 2 * count.writes {
				n, lose := i/2, i%2 == 1
				os.WriteFile(img, pristine, 0o644)
				f := open(t, img)
				if err := stage(t, &cutDevice{File: f, left: n, lose: lose}, neu); !errors.Is(err, errCut) {
					t.Fatalf("cut after %d writes: %v", n, err)
				}
				r, err := NewReader(f, 40<<20)
				if err != nil {
					t.Fatal(err)
				}
				want := maps.Clone(files)
				for p := range neu {
					got, err := r.ReadFile(p, 64<<20)
					if err != nil || !(bytes.Equal(got, files[p]) || bytes.Equal(got, neu[p]) || tc.empty && p == "b/vmlinuz" && len(got) == 0) {
						t.Fatalf("cut after %d writes: %s is %d bytes (%v), neither the old nor the new", n, p, len(got), err)
					}
					want[p] = got
				}
				if exec.Command("fsck.fat", "-n", img).Run() != nil {
					leaks++
				}
				if _, err := Edit(f, 40<<20); err != nil {
					t.Fatal(err)
				}
				check(t, img, want)
				want["b/vmlinuz"] = random(5 << 20)
				if err := replace(t, f, "b/vmlinuz", want["b/vmlinuz"]); err != nil {
					t.Fatalf("cut after %d writes, then an edit: %v", n, err)
				}
				check(t, img, want)
				f.Close()
			}
			if leaks == 0 {
				t.Errorf("no cut of %d left work for the next Edit: the test does not reach it", count.writes)
			}
			t.Logf("%d cuts (after each write, with and without losing the unsynced ones), %d left lost clusters or FATs that differ, which the next Edit mended", 2*count.writes, leaks)
		})
	}
}

func open(t *testing.T, p string) *os.File {
	t.Helper()
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestEditReadsAsLinux: the editor sees the files Linux's vfat sees, and
// edits nothing where the tree does not read cleanly.
func TestEditReadsAsLinux(t *testing.T) {
	const size = 40 << 20
	// Cross-linked: b's kernel starts in a's chain. Edit refuses, the
	// image unchanged (freeing b's old chain would lose a's kernel).
	img, _ := esp(t, 1<<20)
	f := open(t, img)
	e, err := Edit(f, size)
	if err != nil {
		t.Fatal(err)
	}
	_, a, _ := e.find("a/vmlinuz")
	at, _, _ := e.find("b/vmlinuz")
	rec := make([]byte, 32)
	f.ReadAt(rec, at)
	binary.LittleEndian.PutUint16(rec[20:], uint16(a>>16))
	binary.LittleEndian.PutUint16(rec[26:], uint16(a))
	f.WriteAt(rec, at)
	before, _ := os.ReadFile(img)
	if _, err := Edit(f, size); err == nil || !strings.Contains(err.Error(), "two chains") {
		t.Errorf("a cross-linked file system: %v, want a refusal", err)
	}
	if after, _ := os.ReadFile(img); !bytes.Equal(before, after) {
		t.Error("a refused Edit changed the image")
	}

	// A free record (first byte 0) before the kernel in b's folder: Linux
	// reads on past it, and so does the editor, which must not take the
	// kernel's clusters for lost.
	img, files := esp(t, 1<<20)
	f = open(t, img)
	if e, err = Edit(f, size); err != nil {
		t.Fatal(err)
	}
	free := e.Free()
	ents, ats, err := e.folder(folderAt(t, e, "b"))
	if err != nil {
		t.Fatal(err)
	}
	initrd, kernel := lookup(ents, "initrd.img"), lookup(ents, "vmlinuz")
	if initrd < 0 || kernel < initrd {
		t.Fatalf("b holds %v: the test wants its initramfs before its kernel", ents)
	}
	// Its long name's records and its short one.
	for off := ats[initrd]; off >= 0; off -= 32 {
		f.ReadAt(rec, off)
		if off != ats[initrd] && rec[11] != 0x0F {
			break
		}
		rec[0] = 0
		f.WriteAt(rec, off)
	}
	if e, err = Edit(f, size); err != nil {
		t.Fatal(err)
	}
	csize := e.fr.csize
	if want := free + (300000+csize-1)/csize*csize; e.Free() != want {
		t.Errorf("%d bytes free once the initramfs record is cleared, want %d: its clusters only", e.Free(), want)
	}
	files["b/vmlinuz"] = random(2 << 20)
	if err := replace(t, f, "b/vmlinuz", files["b/vmlinuz"]); err != nil {
		t.Fatal(err)
	}
	fr, err := NewReader(f, size)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"a/vmlinuz", "a/initrd.img", "b/vmlinuz"} {
		if got, err := fr.ReadFile(p, 4<<20); err != nil || !bytes.Equal(got, files[p]) {
			t.Errorf("%s: %d bytes (%v), want its %d", p, len(got), err, len(files[p]))
		}
	}

	// A long name whose checksum is not its short record's is not its
	// name: an orphan long name cannot pass one file off as another.
	if raw, err := e.fr.chain(folderAt(t, e, "loader/entries"), 1<<20); err != nil {
		t.Fatal(err)
	} else {
		if lookup(records(raw), "cairn-a.conf") < 0 {
			t.Fatal("loader/entries has no cairn-a.conf to begin with")
		}
		for i := 0; i+32 <= len(raw); i += 32 {
			if raw[i+11] == 0x0F {
				raw[i+13]++
			}
		}
		if ents := records(raw); lookup(ents, "cairn-a.conf") >= 0 || lookup(ents, "cairn-b.conf") >= 0 {
			t.Errorf("long names with the wrong checksum taken: %v", ents)
		}
	}
}

// folderAt is the first cluster of the folder at path.
func folderAt(t *testing.T, e *Editor, path string) uint32 {
	t.Helper()
	c := e.fr.root
	for _, name := range strings.Split(path, "/") {
		ents, _, err := e.folder(c)
		if err != nil {
			t.Fatal(err)
		}
		j := lookup(ents, name)
		if j < 0 || !ents[j].dir {
			t.Fatalf("no folder %s", path)
		}
		c = ents[j].cluster
	}
	return c
}
