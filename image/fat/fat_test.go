package fat

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairn-os/cairn/image/fstree"
)

func sample(t *testing.T) *fstree.Tree {
	tr := fstree.New()
	add := func(p string, data []byte) {
		if err := tr.AddData(p, 0o644, data); err != nil {
			t.Fatal(err)
		}
	}
	add("config.txt", []byte("arm_64bit=1\n"))
	add("CMDLINE.TXT", []byte("console=ttyS1\n"))
	add("EFI/BOOT/BOOTAA64.EFI", bytes.Repeat([]byte{0xAB}, 300000))
	add("loader/entries/cairn-a+3-0.conf", []byte("title Cairn A\n"))
	add("a/broadcom/bcm2837-rpi-3-b.dtb", []byte("dtb"))
	add("a/root.squashfs", bytes.Repeat([]byte("squash"), 3<<20))
	for i := range 40 {
		add(fmt.Sprintf("overlays/a-rather-long-overlay-name-%02d.dtbo", i), []byte{byte(i)})
	}
	add("empty.txt", nil)
	return tr
}

func writeImage(t *testing.T, tr *fstree.Tree, size int64) string {
	p := filepath.Join(t.TempDir(), "fat.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if err := Write(f, tr, Options{Size: size, Label: "CAIRN-A", VolumeID: 0x1234abcd, ModTime: time.Unix(1700000000, 0)}); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFsckAndMtoolsAccept(t *testing.T) {
	tr := sample(t)
	img := writeImage(t, tr, 64<<20)
	out, err := exec.Command("fsck.vfat", "-n", "-v", img).CombinedOutput()
	if err != nil {
		t.Fatalf("fsck.vfat -n: %v\n%s", err, out)
	}
	// mtools reads the files back by their long names.
	dest := t.TempDir()
	if out, err := exec.Command("mcopy", "-s", "-n", "-i", img, "::", dest).CombinedOutput(); err != nil {
		t.Fatalf("mcopy: %v\n%s", err, out)
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
		if !bytes.Equal(got, e.Data) {
			t.Errorf("%s: content differs", e.Path)
		}
	}
	label, _ := exec.Command("fatlabel", img).CombinedOutput()
	if strings.TrimSpace(string(label)) != "CAIRN-A" {
		t.Errorf("label %q", label)
	}
}

func TestTooSmall(t *testing.T) {
	tr := fstree.New()
	tr.AddData("big", 0o644, make([]byte, 40<<20))
	p := filepath.Join(t.TempDir(), "x")
	f, _ := os.Create(p)
	defer f.Close()
	err := Write(f, tr, Options{Size: 36 << 20})
	if err == nil || !strings.Contains(err.Error(), "needs 40 MiB") {
		t.Fatalf("got %v", err)
	}
	if err := Write(f, tr, Options{Size: 20 << 20}); err == nil || !strings.Contains(err.Error(), "minimum") {
		t.Fatalf("got %v", err)
	}
}

func TestReproducible(t *testing.T) {
	a, _ := os.ReadFile(writeImage(t, sample(t), 40<<20))
	b, _ := os.ReadFile(writeImage(t, sample(t), 40<<20))
	if !bytes.Equal(a, b) {
		t.Fatal("two builds differ")
	}
}
