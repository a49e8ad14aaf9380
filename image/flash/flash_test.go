//go:build linux

package flash_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-os/cairn/image/flash"
	"github.com/cairn-os/cairn/internal/cli"
	"golang.org/x/sys/unix"
)

const oldByte = 0xaa // what the device held before

// loopDevice attaches a file of size bytes, all oldByte, as a loop device:
// a real block device, which the kernel does not call removable.
func loopDevice(t *testing.T, size int64) (dev, backing string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for loop devices")
	}
	backing = filepath.Join(t.TempDir(), "card")
	if err := os.WriteFile(backing, bytes.Repeat([]byte{oldByte}, int(size)), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "--find", "--show", "--partscan", backing).CombinedOutput()
	if err != nil {
		t.Skipf("no loop device here: losetup: %v: %s", err, out)
	}
	dev = strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	return dev, backing
}

// sparseImage writes an image of size bytes whose data is the given
// ranges (random bytes); the rest are holes.
func sparseImage(t *testing.T, size int64, data [][2]int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "x.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for _, d := range data {
		b := make([]byte, d[1]-d[0])
		for i := range b {
			b[i] = byte(r.Uint32() | 1) // never 0, never a hole by accident
		}
		if _, err := f.WriteAt(b, d[0]); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// write opens d and writes the image at p onto it.
func write(d *flash.Device, p string, w *bytes.Buffer) (*flash.Result, error) {
	t, err := d.Open()
	if err != nil {
		return nil, err
	}
	defer t.Close()
	return t.Write(context.Background(), p, w)
}

func TestWriteToALoopDevice(t *testing.T) {
	dev, backing := loopDevice(t, 64<<20)
	d, err := flash.Describe(dev)
	if err != nil {
		t.Fatal(err)
	}
	if d.Size != 64<<20 || d.Removable || !strings.Contains(d.Model, "loop device of "+backing) {
		t.Errorf("described as %v", d)
	}
	if err := d.Check(); !errors.Is(err, flash.ErrNotRemovable) {
		t.Errorf("a loop device: %v, want ErrNotRemovable", err)
	}

	// Data at the start (the partition table), in the middle, and at the
	// very end (GPT's backup header); holes between.
	size := int64(48 << 20)
	data := [][2]int64{{0, 1 << 20}, {10 << 20, 10<<20 + 8192}, {size - 512, size}}
	img := sparseImage(t, size, data)
	var progress bytes.Buffer
	res, err := write(d, img, &progress)
	if err != nil {
		t.Fatal(err)
	}
	if res.Image != size || res.Data < 1<<20+8192+512 || res.Data > 2<<20 {
		t.Errorf("wrote %d bytes of data of an image of %d", res.Data, res.Image)
	}
	for _, want := range []string{"writing " + dev, "reading back " + dev} {
		if !strings.Contains(progress.String(), want) {
			t.Errorf("no %q in the progress:\n%s", want, progress.String())
		}
	}
	got, err := os.ReadFile(backing)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(img)
	for _, r := range data {
		if !bytes.Equal(got[r[0]:r[1]], want[r[0]:r[1]]) {
			t.Errorf("bytes %d to %d differ from the image", r[0], r[1])
		}
	}
	// A hole is zeros on the card (a copy of an image may hold needed
	// zeros as holes); after the image, the card keeps what it had.
	if !bytes.Equal(got[1<<20:10<<20], make([]byte, 9<<20)) || got[size] != oldByte {
		t.Errorf("a hole of the image is not zeros (%#x), or the space after it was written (%#x)", got[5<<20], got[size])
	}

	big := sparseImage(t, 65<<20, [][2]int64{{0, 4096}})
	if _, err := write(d, big, &progress); err == nil || !strings.Contains(err.Error(), "more than the 64.0 MiB of "+dev) {
		t.Errorf("an image larger than the device: %v", err)
	}
}

// A partition, a mounted device, and the CLI's questions.
func TestRefusals(t *testing.T) {
	dev, _ := loopDevice(t, 32<<20)
	if out, err := exec.Command("sh", "-c", "echo 'start=2048, type=c' | sfdisk -q "+dev+" && partx -a "+dev).CombinedOutput(); err != nil {
		t.Fatalf("sfdisk, partx: %v\n%s", err, out)
	}
	// Without udev the partition may have no node in /dev: make one.
	var st unix.Stat_t
	if err := unix.Stat(dev, &st); err != nil {
		t.Fatal(err)
	}
	sysPart := fmt.Sprintf("/sys/class/block/%sp1/dev", filepath.Base(dev))
	num, err := os.ReadFile(sysPart)
	if err != nil {
		t.Fatalf("the kernel shows no partition: %v", err)
	}
	var major, minor uint32
	fmt.Sscanf(string(num), "%d:%d", &major, &minor)
	part := filepath.Join(t.TempDir(), "part1")
	if err := unix.Mknod(part, unix.S_IFBLK|0o600, int(unix.Mkdev(major, minor))); err != nil {
		t.Fatal(err)
	}
	if _, err := flash.Describe(part); err == nil || !strings.Contains(err.Error(), "is a partition of "+dev+"; name the whole device") {
		t.Errorf("a partition: %v", err)
	}
	if _, err := flash.Describe(sysPart); err == nil || !strings.Contains(err.Error(), "is not a block device") {
		t.Errorf("a file: %v", err)
	}

	if out, err := exec.Command("mke2fs", "-q", "-t", "ext4", part).CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", part, mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount here: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	d, err := flash.Describe(dev)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Check(); !errors.Is(err, flash.ErrInUse) || !strings.Contains(err.Error(), "is mounted at "+mnt) {
		t.Errorf("a mounted device: %v", err)
	}
	// --force does not override it; and when a caller skips the checks,
	// the kernel refuses.
	img := sparseImage(t, 8<<20, [][2]int64{{0, 1 << 20}})
	if out, err := cairn(t, "", "flash", "--force", "--yes", img, dev); cli.Code(err) != 2 || !strings.Contains(err.Error(), "is mounted at "+mnt) {
		t.Errorf("cairn flash --force of a mounted device: %v\n%s", err, out)
	}
	if _, err := d.Open(); !errors.Is(err, flash.ErrInUse) {
		t.Errorf("opening a mounted device: %v", err)
	}
}

// cairn runs the CLI in-process with stdin as its input.
func cairn(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() { w.WriteString(stdin); w.Close() }()
	old := os.Stdin
	os.Stdin = r
	defer func() { os.Stdin = old; r.Close() }()
	var out bytes.Buffer
	err = cli.Run(context.Background(), args, &out, &out)
	return out.String(), err
}

func TestCLI(t *testing.T) {
	dev, backing := loopDevice(t, 16<<20)
	img := sparseImage(t, 8<<20, [][2]int64{{0, 1 << 20}})
	unchanged := func() bool {
		b, _ := os.ReadFile(backing)
		return b[0] == oldByte
	}
	for _, tc := range []struct {
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"y\n", []string{img, dev}, 2, "is not removable: it may be a disk of this machine; check with lsblk, and give --force if it is the card or stick"},
		{"n\n", []string{"--force", img, dev}, 1, "nothing was written to " + dev},
		{"", []string{"--force", img, dev}, 2, "no answer, so nothing was written; give --yes to write without asking"},
		{"", []string{"--force", img, backing}, 2, backing + " is not a block device"},
	} {
		out, err := cairn(t, tc.stdin, append([]string{"flash"}, tc.args...)...)
		if err == nil || cli.Code(err) != tc.code || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("cairn flash %v: exit %d, %v; want %d and %q\n%s", tc.args, cli.Code(err), err, tc.code, tc.want, out)
		}
		if !unchanged() {
			t.Fatalf("cairn flash %v wrote to the device", tc.args)
		}
	}
	out, err := cairn(t, "yes\n", "flash", "--force", img, dev)
	if err != nil {
		t.Fatalf("cairn flash: %v\n%s", err, out)
	}
	for _, want := range []string{dev + ": loop device of " + backing + ", 16.0 MiB, not removable", "Everything on " + dev + " will be lost",
		dev + ": wrote " + img + " (8.0 MiB: 1.0 MiB of data, the rest zeros) in ", "and it matches; it is safe to remove"} {
		if !strings.Contains(out, want) {
			t.Errorf("cairn flash said no %q:\n%s", want, out)
		}
	}
	if unchanged() {
		t.Error("cairn flash did not write the device")
	}
}

// A card swapped between the look and the write is not written.
func TestSwappedCard(t *testing.T) {
	dev, _ := loopDevice(t, 16<<20)
	d, err := flash.Describe(dev)
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "other")
	if err := os.WriteFile(other, make([]byte, 32<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("sh", "-c", "losetup -d "+dev+" && losetup "+dev+" "+other).CombinedOutput(); err != nil {
		t.Fatalf("losetup: %v\n%s", err, out)
	}
	if _, err := d.Open(); err == nil || !strings.Contains(err.Error(), "changed since it was looked at") {
		t.Errorf("a swapped card: %v", err)
	}
}
