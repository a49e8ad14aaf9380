package squashfs

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairn-os/cairn/image/fstree"
)

// sampleTree has what a real root has: a folder of hundreds of files, deep
// nesting, large random and compressible files, symlinks (one dangling),
// setuid and sticky modes, a device node, an empty file and folder, and a
// non-root owner.
func sampleTree(t *testing.T) *fstree.Tree {
	t.Helper()
	tr := fstree.New()
	rng := rand.New(rand.NewPCG(1, 2))
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range 300 {
		must(tr.AddData(fmt.Sprintf("lib/modules/m%03d.ko", i), 0o644, bytes.Repeat([]byte{byte(i)}, 100+i*37)))
	}
	random := make([]byte, 5<<20+12345)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	must(tr.AddData("usr/bin/big", 0o755, random))
	must(tr.AddData("usr/share/text", 0o644, bytes.Repeat([]byte("cairn edge os "), 40000)))
	must(tr.AddData("usr/bin/su", fs.ModeSetuid|0o755, []byte("#!/bin/false\n")))
	must(tr.Mkdir("tmp", fs.ModeSticky|0o777))
	must(tr.Mkdir("empty", 0o700))
	must(tr.AddData("etc/empty", 0o600, nil))
	must(tr.Symlink("bin", "usr/bin"))
	must(tr.Symlink("etc/dangling", "/nowhere/at/all"))
	must(tr.CharDev("dev/console", 0o600, 5, 1))
	must(tr.AddData("a/b/c/d/e/f/deep", 0o644, []byte("deep")))
	e, _ := tr.Get("usr/share/text")
	e.UID, e.GID = 1000, 1001
	return tr
}

func write(t *testing.T, tr *fstree.Tree, comp string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "img.sqfs")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, err := Write(f, tr, Options{Compression: comp, ModTime: time.Unix(1700000000, 0)})
	if err != nil {
		t.Fatal(err)
	}
	if n%4096 != 0 {
		t.Errorf("size %d not padded", n)
	}
	return p
}

func TestUnsquashfsReadsOurImages(t *testing.T) {
	if _, err := exec.LookPath("unsquashfs"); err != nil {
		t.Fatal("unsquashfs is missing: install squashfs-tools (make deps does)")
	}
	tr := sampleTree(t)
	for _, comp := range []string{"zstd", "gzip", "xz"} {
		t.Run(comp, func(t *testing.T) {
			img := write(t, tr, comp)
			out, err := exec.Command("unsquashfs", "-lln", img).CombinedOutput()
			if err != nil {
				t.Fatalf("unsquashfs -lln: %v\n%s", err, out)
			}
			listing := strings.Join(strings.Fields(string(out)), " ")
			for _, want := range []string{
				"-rwsr-xr-x 0/0 13 2023-11-14 22:13 squashfs-root/usr/bin/su",
				"lrwxrwxrwx 0/0 15 2023-11-14 22:13 squashfs-root/etc/dangling -> /nowhere/at/all",
				"crw------- 0/0 5, 1 2023-11-14 22:13 squashfs-root/dev/console",
				"drwxrwxrwt 0/0 3 2023-11-14 22:13 squashfs-root/tmp",
				"drwx------ 0/0 3 2023-11-14 22:13 squashfs-root/empty",
				"-rw-r--r-- 1000/1001",
				"squashfs-root/lib/modules/m299.ko",
			} {
				if !strings.Contains(listing, want) {
					t.Errorf("listing lacks %q", want)
				}
			}
			dest := filepath.Join(t.TempDir(), "x")
			if out, err := exec.Command("unsquashfs", "-d", dest, img).CombinedOutput(); err != nil {
				t.Fatalf("unsquashfs: %v\n%s", err, out)
			}
			for _, e := range tr.Walk() {
				if !e.Mode.IsRegular() {
					continue
				}
				got, err := os.ReadFile(filepath.Join(dest, e.Path))
				if err != nil {
					t.Errorf("%s: %v", e.Path, err)
					continue
				}
				r, _ := e.Open()
				var want bytes.Buffer
				want.ReadFrom(r)
				if sha256.Sum256(got) != sha256.Sum256(want.Bytes()) {
					t.Errorf("%s: content differs", e.Path)
				}
			}
		})
	}
}

func TestReproducible(t *testing.T) {
	a, _ := os.ReadFile(write(t, sampleTree(t), "zstd"))
	b, _ := os.ReadFile(write(t, sampleTree(t), "zstd"))
	if !bytes.Equal(a, b) {
		t.Fatal("two builds of the same tree differ")
	}
}
