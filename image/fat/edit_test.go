package fat

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"slices"
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
}

// cutDevice stops writing after a number of writes, as a power cut does;
// its syncs fail from then on.
type cutDevice struct {
	*os.File
	left   int
	writes int
}

var errCut = errors.New("power cut")

func (d *cutDevice) WriteAt(p []byte, off int64) (int, error) {
	if d.left == 0 {
		return 0, errCut
	}
	d.left--
	d.writes++
	return d.File.WriteAt(p, off)
}

func (d *cutDevice) Sync() error {
	if d.left == 0 {
		return errCut
	}
	return d.File.Sync()
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
			for n := range count.writes {
				os.WriteFile(img, pristine, 0o644)
				f := open(t, img)
				if err := stage(t, &cutDevice{File: f, left: n}, neu); !errors.Is(err, errCut) {
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
			t.Logf("%d cuts, %d left lost clusters or FATs that differ, which the next Edit mended", count.writes, leaks)
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
