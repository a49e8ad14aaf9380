package vmtest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const plainConfig = "apiVersion: cairn.dev/v1alpha1\nkind: Node\nhostname: artifact\n"

// TestImagesPassRealTools builds the UEFI and Raspberry Pi images and checks
// every partition with the tools a user would trust.
func TestImagesPassRealTools(t *testing.T) {
	need(t, "sfdisk", "sgdisk", "fsck.vfat", "unsquashfs", "cpio", "mcopy")
	dir := t.TempDir()
	for _, tc := range []struct {
		board, label string
		fats         []int // FAT partitions
		root         func(t *testing.T, img string, parts []sfPart) string
		bootFiles    []string
	}{
		{"qemu-arm64", "gpt", []int{0}, func(t *testing.T, img string, p []sfPart) string { return extract(t, img, p[1]) },
			[]string{"EFI/BOOT/BOOTAA64.EFI", "loader/loader.conf", "loader/entries/cairn-a.conf", "a/vmlinuz", "b/initrd.img"}},
		{"rpi4", "dos", []int{0, 1, 2}, rootFromSlot, []string{"autoboot.txt"}},
		{"rpi3", "dos", []int{0, 1, 2}, rootFromSlot, []string{"bootcode.bin", "start.elf", "u-boot.bin", "boot.scr", "config.txt", "bcm2837-rpi-3-b.dtb"}},
	} {
		t.Run(tc.board, func(t *testing.T) {
			img := buildImage(t, tc.board, plainConfig, dir)
			label, parts := partitions(t, img)
			if label != tc.label || len(parts) != 3 {
				t.Fatalf("table %s with %d partitions", label, len(parts))
			}
			if tc.label == "gpt" {
				run(t, "sgdisk", "-v", img)
			}
			for _, i := range tc.fats {
				part := extract(t, img, parts[i])
				if out, err := exec.Command("fsck.vfat", "-n", part).CombinedOutput(); err != nil {
					t.Errorf("fsck.vfat -n partition %d: %v\n%s", i+1, err, out)
				}
			}
			boot := extract(t, img, parts[0])
			listing := run(t, "mdir", "-/", "-b", "-i", boot, "::")
			for _, f := range tc.bootFiles {
				if !strings.Contains(listing, "::/"+f) {
					t.Errorf("boot partition lacks %s:\n%s", f, listing)
				}
			}
			root := tc.root(t, img, parts)
			list := run(t, "unsquashfs", "-lln", root)
			for _, want := range []string{"squashfs-root/sbin/init", "squashfs-root/usr/bin/cairnd", "squashfs-root/sbin/mke2fs",
				"squashfs-root/usr/lib/cairn/config.yaml", "modules.dep", "ld-linux-aarch64.so.1"} {
				if !strings.Contains(list, want) {
					t.Errorf("root lacks %s", want)
				}
			}
			initrd := initramfsOf(t, tc.board, boot, parts, img)
			cp := exec.Command("sh", "-c", "gzip -dc | cpio -it")
			cp.Stdin = bytes.NewReader(initrd)
			out, err := cp.CombinedOutput()
			if err != nil {
				t.Fatalf("cpio -t: %v\n%s", err, out)
			}
			for _, want := range []string{"init", "dev/console", "squashfs.ko", "ext4.ko", "modules.dep"} {
				if !strings.Contains(string(out), want) {
					t.Errorf("initramfs lacks %s", want)
				}
			}
		})
	}
}

func rootFromSlot(t *testing.T, img string, parts []sfPart) string {
	slot := extract(t, img, parts[1])
	dest := filepath.Join(t.TempDir(), "root.squashfs")
	run(t, "mcopy", "-i", slot, "::root.squashfs", dest)
	return dest
}

func initramfsOf(t *testing.T, board, boot string, parts []sfPart, img string) []byte {
	src, path := boot, "::a/initrd.img"
	if board != "qemu-arm64" {
		src, path = extract(t, img, parts[1]), "::initrd.img"
	}
	dest := filepath.Join(t.TempDir(), "initrd.img")
	run(t, "mcopy", "-i", src, path, dest)
	data, err := os.ReadFile(dest)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestReproducibleBuild builds the same image twice and compares bytes.
func TestReproducibleBuild(t *testing.T) {
	a, _ := os.ReadFile(buildImage(t, "rpi4", plainConfig, t.TempDir()))
	b, _ := os.ReadFile(buildImage(t, "rpi4", plainConfig, t.TempDir()))
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Fatal("two builds from the same inputs differ")
	}
}

// TestBadInput checks that bad input gets one clear sentence, a non-zero
// exit, and no output file.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("apiVersion: cairn.dev/v1alpha1\nkind: Node\nnetwork:\n  interfaces:\n    - name: eth0\n      addresses: [10.1.2.300/24]\n"), 0o644)
	out := filepath.Join(dir, "x.img")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"build", "--config", bad, "-o", out}, "bad.yaml:6:19: network.interfaces[0].addresses[0]"},
		{[]string{"build", "--board", "rpi9", "-o", out}, "unknown board \"rpi9\": choose one of"},
		{[]string{"build", "--board", "rpi5", "-o", out, "--bin-dir", deviceBinaries(t)}, "linux-image-rpi-2712 is in none of the configured repositories"},
		{[]string{"build", "-o", "/proc/nope/x.img", "--bin-dir", deviceBinaries(t)}, "cannot write the output"},
	} {
		msg, err := cairn(t, tc.args...)
		if err == nil {
			t.Errorf("%v: no error", tc.args)
			continue
		}
		if !strings.Contains(err.Error()+msg, tc.want) {
			t.Errorf("%v: got %q\n%s, want %q", tc.args, err, msg, tc.want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%v left %s behind", tc.args, out)
		}
		leftovers, _ := filepath.Glob(filepath.Join(dir, ".*"))
		if len(leftovers) > 0 {
			t.Errorf("%v left temporary files: %v", tc.args, leftovers)
		}
	}
}
