package build

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairn-os/cairn/boards"
	"github.com/cairn-os/cairn/configs"
	"github.com/cairn-os/cairn/image/deb/debtest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

const fakeKernel = "6.1.0-99-arm64"

// fakeDebs writes small stand-ins for every package a build of these
// boards takes: a kernel whose modules are all built in, its device trees,
// the firmware, e2fsprogs and the cluster's userland. Nothing in them runs;
// they only have to land in the right places.
func fakeDebs(t *testing.T, dir string, builtin []string) {
	t.Helper()
	exe := func(name string) debtest.Member {
		return debtest.Member{Name: name, Type: '0', Body: "#!/bin/false " + filepath.Base(name) + "\n", Mode: 0o755}
	}
	var mods strings.Builder
	for _, m := range builtin {
		fmt.Fprintf(&mods, "kernel/fake/%s.ko\n", m)
	}
	pkgs := map[string][]debtest.Member{
		"linux-image-arm64": {
			debtest.File("./boot/vmlinuz-"+fakeKernel, "kernel image"),
			debtest.File("./lib/modules/"+fakeKernel+"/modules.builtin", mods.String()),
			debtest.File("./usr/lib/linux-image-"+fakeKernel+"/broadcom/bcm2711-rpi-4-b.dtb", "pi 4 b"),
			debtest.File("./usr/lib/linux-image-"+fakeKernel+"/broadcom/bcm2711-rpi-400.dtb", "pi 400"),
			debtest.File("./usr/lib/linux-image-"+fakeKernel+"/broadcom/bcm2711-rpi-cm4-io.dtb", "cm4 io"),
			debtest.File("./usr/lib/linux-image-"+fakeKernel+"/broadcom/bcm2837-rpi-3-b.dtb", "pi 3 b"),
			debtest.File("./usr/lib/linux-image-"+fakeKernel+"/broadcom/bcm2837-rpi-3-b-plus.dtb", "pi 3 b+"),
			debtest.File("./usr/lib/linux-image-"+fakeKernel+"/broadcom/bcm2837-rpi-zero-2-w.dtb", "zero 2 w"),
		},
		// The Pi 5's kernel, from the Raspberry Pi OS archive.
		"linux-image-rpi-2712": {
			debtest.File("./boot/vmlinuz-"+fakeKernel+"-rpi-2712", "pi 5 kernel image"),
			debtest.File("./lib/modules/"+fakeKernel+"-rpi-2712/modules.builtin", mods.String()),
			debtest.File("./usr/lib/linux-image-"+fakeKernel+"-rpi-2712/broadcom/bcm2712-rpi-5-b.dtb", "pi 5 b"),
		},
		"systemd-boot-efi": {debtest.File("./usr/lib/systemd/boot/efi/systemd-bootaa64.efi", "systemd-boot")},
		"raspi-firmware": {
			debtest.File("./usr/lib/raspi-firmware/start4.elf", "start4"), debtest.File("./usr/lib/raspi-firmware/fixup4.dat", "fixup4"),
			debtest.File("./usr/lib/raspi-firmware/bootcode.bin", "bootcode"), debtest.File("./usr/lib/raspi-firmware/start.elf", "start"),
			debtest.File("./usr/lib/raspi-firmware/fixup.dat", "fixup"),
		},
		"u-boot-rpi":                  {debtest.File("./usr/lib/u-boot/rpi_arm64/u-boot.bin", "u-boot")},
		"e2fsprogs":                   {exe("./sbin/mke2fs"), exe("./sbin/e2fsck"), exe("./sbin/resize2fs"), debtest.File("./etc/mke2fs.conf", "[defaults]\n")},
		"runc":                        {exe("./usr/sbin/runc")},
		"containernetworking-plugins": {exe("./usr/lib/cni/bridge"), exe("./usr/lib/cni/host-local"), exe("./usr/lib/cni/loopback"), exe("./usr/lib/cni/portmap")},
		"iptables":                    {exe("./usr/sbin/xtables-nft-multi"), debtest.File("./usr/lib/aarch64-linux-gnu/xtables/libxt_comment.so", "extension")},
		"mount":                       {exe("./bin/mount"), exe("./bin/umount")},
		"netbase":                     {debtest.File("./etc/protocols", "tcp 6 TCP\n"), debtest.File("./etc/services", "http 80/tcp\n")},
		"wpasupplicant":               {exe("./sbin/wpa_supplicant")},
		"wireless-regdb":              {debtest.File("./lib/firmware/regulatory.db-debian", "regdb"), debtest.File("./lib/firmware/regulatory.db.p7s-debian", "signature")},
		"firmware-brcm80211": {
			debtest.File("./lib/firmware/brcm/brcmfmac43455-sdio.raspberrypi,4-model-b.txt", "nvram"), debtest.File("./lib/firmware/cypress/cyfmac43455-sdio.bin", "43455"),
			debtest.File("./lib/firmware/brcm/brcmfmac43430-sdio.raspberrypi,3-model-b.txt", "nvram"), debtest.File("./lib/firmware/cypress/cyfmac43430-sdio.bin", "43430"),
			debtest.File("./lib/firmware/brcm/brcmfmac4356-pcie.bin", "not a Pi's"),
		},
	}
	for name, files := range pkgs {
		control := fmt.Sprintf("Package: %s\nVersion: 1.0\nArchitecture: arm64\n", name)
		if err := os.WriteFile(filepath.Join(dir, name+"_1.0_arm64.deb"), debtest.Deb(t, control, ".gz", files...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// fakeBinaries writes stand-ins for the device binaries.
func fakeBinaries(t *testing.T, dir string) {
	t.Helper()
	for _, n := range []string{"init", "cairnd", "pause", shimName} {
		p := filepath.Join(dir, "linux-arm64", n)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("fake "+n+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// TestGoldenImages builds each board's image, a plain node and a server,
// from fake packages and lists every partition: its bytes' sha256, and
// each file with its mode, owner, size and sha256 (the root squashfs
// read by unsquashfs, FAT partitions by mtools). A change to what an
// image holds shows as a diff of testdata/golden; go test -update
// rewrites them.
func TestGoldenImages(t *testing.T) {
	for _, tool := range []string{"sfdisk", "mcopy", "unsquashfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is missing: run make deps", tool)
		}
	}
	debs, bins, cache := t.TempDir(), t.TempDir(), t.TempDir()
	var builtin []string
	for _, name := range []string{"qemu-arm64", "rpi4", "rpi3", "rpi5"} {
		p, _ := boards.Get(name)
		builtin = slices.Concat(builtin, p.InitramfsModules, p.Modules)
	}
	fakeDebs(t, debs, slices.Concat(builtin, clusterModules, wifiModules))
	fakeBinaries(t, bins)
	for _, tc := range []struct{ board, kind, config string }{
		{"qemu-arm64", "node", "apiVersion: cairn.dev/v1alpha1\nkind: Node\nhostname: golden\n"},
		{"qemu-arm64", "server", "apiVersion: cairn.dev/v1alpha1\nkind: Node\nhostname: golden\ncluster:\n  role: server\n"},
		{"rpi4", "node", "apiVersion: cairn.dev/v1alpha1\nkind: Node\nhostname: golden\n"},
		{"rpi3", "node", "apiVersion: cairn.dev/v1alpha1\nkind: Node\nhostname: golden\n"},
		{"rpi5", "node", "apiVersion: cairn.dev/v1alpha1\nkind: Node\nhostname: golden\n"},
	} {
		t.Run(tc.board+"-"+tc.kind, func(t *testing.T) {
			profile, err := boards.Get(tc.board)
			if err != nil {
				t.Fatal(err)
			}
			// Small partitions, so that the test reads and hashes little.
			board := *profile
			board.Layout.Boot, board.Layout.Slot = 40, 40
			cfg, _, err := configs.Parse("golden.yaml", []byte(tc.config))
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "golden.img")
			var cluster map[string][]byte
			if cfg.Cluster != nil {
				cluster = map[string][]byte{"token": []byte("cairn1.fake\n"), "server-ca.key": []byte("fake key\n")}
			}
			_, err = Image(context.Background(), Options{
				Board: &board, Config: cfg, ConfigRaw: []byte(tc.config), ClusterFiles: cluster, Output: out,
				BinDir: bins, Cache: cache, Debs: debs, Epoch: time.Unix(1780000000, 0).UTC(), Version: "golden",
			})
			if err != nil {
				t.Fatal(err)
			}
			got := listImage(t, out)
			file := filepath.Join("testdata", "golden", tc.board+"-"+tc.kind+".txt")
			if *update {
				os.MkdirAll(filepath.Dir(file), 0o755)
				if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (go test -update writes it)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs from what the build made (go test -update rewrites it):\n%s", file, diff(string(want), got))
			}
		})
	}
}

// listImage describes an image: its table and each partition.
func listImage(t *testing.T, img string) string {
	t.Helper()
	raw, err := exec.Command("sfdisk", "--json", img).Output()
	if err != nil {
		t.Fatalf("sfdisk: %v", err)
	}
	var doc struct {
		Table struct {
			Label, ID  string
			Partitions []struct {
				Start, Size int64
				Type, Name  string
			}
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "table %s id %s, %d bytes\n", doc.Table.Label, strings.ToLower(doc.Table.ID), len(data))
	for i, p := range doc.Table.Partitions {
		part := data[p.Start*512 : (p.Start+p.Size)*512]
		fmt.Fprintf(&b, "\npartition %d %s %s: start %d, %d bytes, sha256 %x\n", i+1, p.Type, p.Name, p.Start*512, len(part), sha256.Sum256(part))
		file := filepath.Join(t.TempDir(), "part")
		os.WriteFile(file, part, 0o644)
		switch {
		case string(part[:4]) == "hsqs":
			b.WriteString(listSquashfs(t, file))
		case string(part[82:87]) == "FAT32":
			b.WriteString(listFAT(t, file))
		}
	}
	return b.String()
}

// listFAT lists each file of a FAT partition with its size and sha256,
// and what a root squashfs in it holds.
func listFAT(t *testing.T, file string) string {
	dir := filepath.Join(t.TempDir(), "fat")
	os.Mkdir(dir, 0o755)
	if out, err := exec.Command("mcopy", "-s", "-n", "-i", file, "::/", dir).CombinedOutput(); err != nil {
		t.Fatalf("mcopy: %v\n%s", err, out)
	}
	label, _ := exec.Command("mlabel", "-s", "-i", file, "::").Output()
	var b strings.Builder
	fmt.Fprintf(&b, "  label %s\n", strings.TrimPrefix(strings.TrimSpace(string(label)), "Volume label is "))
	var squashfs []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, _ := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(&b, "  %s %d %x\n", filepath.ToSlash(rel), len(data), sha256.Sum256(data))
		if strings.HasPrefix(string(data), "hsqs") {
			squashfs = append(squashfs, rel)
		}
		return nil
	})
	for _, rel := range squashfs {
		fmt.Fprintf(&b, "  %s holds:\n", rel)
		b.WriteString(listSquashfs(t, filepath.Join(dir, rel)))
	}
	return b.String()
}

var squashLine = regexp.MustCompile(`^(\S+) (\S+) +(\d+) \S+ \S+ squashfs-root(\S*)(.*)$`)

// listSquashfs lists mode, owner, size, path (and link target) of every
// entry, and the sha256 of each regular file.
func listSquashfs(t *testing.T, file string) string {
	out, err := exec.Command("unsquashfs", "-lln", file).Output()
	if err != nil {
		t.Fatalf("unsquashfs -lln: %v", err)
	}
	dir := filepath.Join(t.TempDir(), "root")
	if out, err := exec.Command("unsquashfs", "-q", "-n", "-d", dir, file).CombinedOutput(); err != nil {
		t.Fatalf("unsquashfs: %v\n%s", err, out)
	}
	var b strings.Builder
	for _, l := range strings.Split(string(out), "\n") {
		m := squashLine.FindStringSubmatch(l)
		if m == nil || m[4] == "" {
			continue
		}
		fmt.Fprintf(&b, "  %s %s %s %s%s", m[1], m[2], m[3], m[4], m[5])
		if m[1][0] == '-' {
			data, _ := os.ReadFile(filepath.Join(dir, m[4]))
			fmt.Fprintf(&b, " %x", sha256.Sum256(data))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// diff shows the lines only one side has.
func diff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for _, l := range w {
		if !slices.Contains(g, l) {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range g {
		if !slices.Contains(w, l) {
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}
