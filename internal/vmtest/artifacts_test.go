package vmtest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairn-os/cairn/boards"
	"github.com/cairn-os/cairn/configs"
	"github.com/cairn-os/cairn/image/apt"
	"github.com/cairn-os/cairn/image/build"
	"github.com/cairn-os/cairn/image/inspect"
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
		radio        []string // the Wi-Fi firmware its root has; none: no Wi-Fi
		modules      []string // what the board's hardware needs beyond the common ones
	}{
		{"qemu-arm64", "gpt", []int{0}, func(t *testing.T, img string, p []sfPart) string { return extract(t, img, p[1]) },
			[]string{"EFI/BOOT/BOOTAA64.EFI", "loader/loader.conf", "loader/entries/cairn-a.conf", "a/vmlinuz", "b/initrd.img"}, nil, nil},
		{"rpi4", "dos", []int{0, 1, 2}, rootFromSlot, []string{"start4.elf", "fixup4.dat", "u-boot.bin", "boot.scr", "config.txt", "bcm2711-rpi-4-b.dtb", "cairn/a.env"},
			[]string{"brcm/brcmfmac43455-sdio.raspberrypi,4-model-b.txt", "brcm/brcmfmac43455-sdio.bin -> ../cypress/cyfmac43455-sdio.bin", "cypress/cyfmac43455-sdio.bin"},
			// The firmware's reset of the USB controller, which xHCI waits for.
			[]string{"initrd:reset-raspberrypi.ko", "initrd:xhci-pci.ko", "genet.ko", "bcm2835_wdt.ko"}},
		{"rpi3", "dos", []int{0, 1, 2}, rootFromSlot, []string{"bootcode.bin", "start.elf", "u-boot.bin", "boot.scr", "config.txt", "bcm2837-rpi-3-b.dtb"},
			[]string{"brcm/brcmfmac43430-sdio.raspberrypi,3-model-b.txt", "cypress/cyfmac43430-sdio.bin", "brcm/brcmfmac43455-sdio.raspberrypi,3-model-b-plus.txt"},
			// The USB controller the Ethernet chip sits behind.
			[]string{"dwc2.ko", "smsc95xx.ko", "lan78xx.ko", "bcm2835_wdt.ko"}},
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
			for _, want := range []string{"squashfs-root/sbin/init", "squashfs-root/sbin/mke2fs",
				"squashfs-root/usr/lib/cairn/config.yaml", "modules.dep", "ld-linux-aarch64.so.1"} {
				if !strings.Contains(list, want) {
					t.Errorf("root lacks %s", want)
				}
			}
			// A board with a radio carries Wi-Fi whatever the config says,
			// so that a card's cairn.yaml can add a network; another board
			// only when its config names one.
			wifi := []string{"squashfs-root/sbin/wpa_supplicant", "squashfs-root/lib/firmware/regulatory.db -> regulatory.db-debian",
				"squashfs-root/lib/firmware/regulatory.db.p7s -> regulatory.db.p7s-debian", "libnl-genl-3.so.200", "kernel/crypto/ccm.ko", "cfg80211.ko"}
			for _, f := range tc.radio {
				wifi = append(wifi, "squashfs-root/lib/firmware/"+f)
			}
			for _, f := range wifi {
				if strings.Contains(list, f) != (tc.radio != nil) {
					t.Errorf("board %s, Wi-Fi %t: %s in the root is %t", tc.board, tc.radio != nil, f, !(tc.radio != nil))
				}
			}
			// A node without a cluster: section has nothing to run cairnd for.
			for _, unwanted := range []string{"usr/bin/cairnd", "containerd-shim-runc-v2", "usr/sbin/runc"} {
				if strings.Contains(list, unwanted) {
					t.Errorf("the root of a node without a cluster holds %s", unwanted)
				}
			}
			// What cairn vm reads to know the board, without --board.
			if info, err := inspect.BuildInfo(img); err != nil || info.Board != tc.board || info.Role != "" {
				t.Errorf("inspect.BuildInfo: board %q, role %q, %v; want %s and no role", info.Board, info.Role, err, tc.board)
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
			for _, m := range tc.modules {
				if name, ok := strings.CutPrefix(m, "initrd:"); ok {
					if !strings.Contains(string(out), "/"+name) {
						t.Errorf("board %s: the initramfs lacks %s", tc.board, name)
					}
				} else if !strings.Contains(list, "/"+m) {
					t.Errorf("board %s: the root lacks %s", tc.board, m)
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
	t.Setenv("CAIRN_CLUSTERS", t.TempDir())
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("apiVersion: cairn.dev/v1alpha1\nkind: Node\nnetwork:\n  interfaces:\n    - name: eth0\n      addresses: [10.1.2.300/24]\n"), 0o644)
	out := filepath.Join(dir, "x.img")
	// cluster.images: a file that is not an image, an image for amd64, and
	// a registry nothing listens on.
	os.WriteFile(filepath.Join(dir, "notes.tar"), []byte("not a tar file"), 0o644)
	helloImage(t, "amd64", filepath.Join(dir, "hello-amd64.tar"))
	badImages := filepath.Join(dir, "images.yaml")
	os.WriteFile(badImages, []byte("apiVersion: cairn.dev/v1alpha1\nkind: Node\ncluster:\n  role: server\n  images:\n    - notes.tar\n    - hello-amd64.tar\n    - 127.0.0.1:1/cairn/none:1\n"), 0o644)
	// cluster.manifests: a document without a name, and a missing file.
	os.WriteFile(filepath.Join(dir, "app.yaml"), []byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: app}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {}\n"), 0o644)
	badManifests := filepath.Join(dir, "manifests.yaml")
	os.WriteFile(badManifests, []byte("apiVersion: cairn.dev/v1alpha1\nkind: Node\ncluster:\n  role: server\n  manifests: [app.yaml, gone.yaml]\n"), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"build", "--config", badManifests, "-o", out}, "manifests.yaml:5:15: cluster.manifests[0]: app.yaml: line 5: the object has no metadata.name"},
		{[]string{"build", "--config", badManifests, "-o", out}, "manifests.yaml:5:25: cluster.manifests[1]: gone.yaml: open "},
		{[]string{"build", "--config", bad, "-o", out}, "bad.yaml:6:19: network.interfaces[0].addresses[0]"},
		{[]string{"build", "--board", "rpi9", "-o", out}, "unknown board \"rpi9\": choose one of"},
		{[]string{"build", "--board", "rpi5", "-o", out, "--bin-dir", deviceBinaries(t)}, "linux-image-rpi-2712 is in none of the configured repositories"},
		{[]string{"build", "-o", "/proc/nope/x.img", "--bin-dir", deviceBinaries(t)}, "cannot write the output"},
		{[]string{"build", "--config", badImages, "-o", out}, "images.yaml:6:7: cluster.images[0]: not a container image archive"},
		{[]string{"build", "--config", badImages, "-o", out}, "images.yaml:7:7: cluster.images[1]: hello-amd64.tar is for amd64, but the board is arm64"},
		{[]string{"build", "--config", badImages, "-o", out}, "images.yaml:8:7: cluster.images[2]: 127.0.0.1:1/cairn/none:1: cannot reach the registry"},
		{[]string{"build", "--config", "../../configs/examples/plain.yaml", "-o", out, "--upstream", dir}, "--upstream: ../../configs/examples/plain.yaml has no cluster: section, so nothing would run the programs"},
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

// TestAirGappedBuilds builds the same image three ways — online, --offline
// from the cache the first build filled, and --debs from a folder of the
// .deb files alone — and wants the same bytes each time.
func TestAirGappedBuilds(t *testing.T) {
	dir := t.TempDir()
	online, err := os.ReadFile(buildImage(t, "qemu-arm64", plainConfig, filepath.Join(dir)))
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "qemu-arm64.yaml")
	cache := apt.DefaultCache()

	// The folder of .debs: what the online build fetched, copied by hand.
	debs := filepath.Join(dir, "debs")
	os.Mkdir(debs, 0o755)
	cached, _ := filepath.Glob(filepath.Join(cache, "debs", "*.deb"))
	for _, f := range cached {
		if err := os.Link(f, filepath.Join(debs, filepath.Base(f))); err != nil {
			data, _ := os.ReadFile(f)
			os.WriteFile(filepath.Join(debs, filepath.Base(f)), data, 0o644)
		}
	}
	for _, mode := range [][]string{{"--offline"}, {"--debs", debs}} {
		out := filepath.Join(dir, "again.img")
		msg, err := cairn(t, append([]string{"build", "--board", "qemu-arm64", "--config", cfg, "--output", out, "--bin-dir", deviceBinaries(t)}, mode...)...)
		if err != nil {
			t.Fatalf("build %v: %v\n%s", mode, err, msg)
		}
		again, _ := os.ReadFile(out)
		if !bytes.Equal(online, again) {
			t.Errorf("build %v differs from the online build", mode)
		}
		os.Remove(out)
	}

	// Offline with an empty cache: one sentence saying what to do.
	t.Setenv("CAIRN_CACHE", t.TempDir())
	msg, err := cairn(t, "build", "--board", "qemu-arm64", "--config", cfg, "--output", filepath.Join(dir, "none.img"), "--bin-dir", deviceBinaries(t), "--offline")
	if err == nil || !strings.Contains(err.Error()+msg, "run one build online first, or use --debs") {
		t.Errorf("offline with an empty cache: %v\n%s", err, msg)
	}
	if _, err := os.Stat(filepath.Join(dir, "none.img")); err == nil {
		t.Error("a failed offline build left its output behind")
	}
}

// TestSlotTooSmall builds with profiles whose slots cannot hold the root:
// the error names the partition and the fix, and nothing is left behind.
func TestSlotTooSmall(t *testing.T) {
	cfg, _, err := configs.Parse("node.yaml", []byte(plainConfig))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"qemu-arm64", "rpi4"} {
		board, err := boards.Get(name)
		if err != nil {
			t.Fatal(err)
		}
		small := *board
		small.Layout.Slot = 4
		dir := t.TempDir()
		out := filepath.Join(dir, "small.img")
		_, err = build.Image(context.Background(), build.Options{
			Board: &small, Config: cfg, ConfigRaw: []byte(plainConfig), Output: out,
			BinDir: deviceBinaries(t), Epoch: time.Unix(1780000000, 0), HostRoot: "/",
		})
		if !errors.Is(err, build.ErrTooSmall) || !strings.Contains(err.Error(), "raise") || !strings.Contains(err.Error(), "board profile") {
			t.Errorf("%s with 4 MiB slots: %v", name, err)
		}
		if left, _ := os.ReadDir(dir); len(left) > 0 {
			t.Errorf("%s: left %v behind", name, left)
		}
	}
}
