package update

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-os/cairn/boot"
	"github.com/cairn-os/cairn/boot/bundle"
	"github.com/cairn-os/cairn/internal/nodeapi"
)

func TestFits(t *testing.T) {
	n := &Node{Info: boot.BuildInfo{Board: "qemu-arm64", Arch: "arm64", Family: boot.UEFI, Epoch: 100, Version: "v1"}, Cluster: "edge"}
	good := bundle.Manifest{Board: "qemu-arm64", Arch: "arm64", Family: boot.UEFI, Cluster: "edge", Build: 100}
	if err := n.fits(&good, false); err != nil {
		t.Errorf("the same build: %v", err)
	}
	for name, tc := range map[string]struct {
		change func(m *bundle.Manifest)
		want   string
	}{
		"board":     {func(m *bundle.Manifest) { m.Board = "rpi4" }, "for board rpi4"},
		"cluster":   {func(m *bundle.Manifest) { m.Cluster = "" }, `for cluster ""`},
		"family":    {func(m *bundle.Manifest) { m.Family = boot.RPiUBoot }, "boots through rpi-uboot, but this node's card boots through uefi"},
		"downgrade": {func(m *bundle.Manifest) { m.Build = 99 }, "--allow-downgrade"},
	} {
		m := good
		tc.change(&m)
		err := n.fits(&m, false)
		if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a refusal naming %q", name, err, tc.want)
		}
	}
	old := good
	old.Build = 99
	if err := n.fits(&old, true); err != nil {
		t.Errorf("a downgrade allowed: %v", err)
	}
}

func TestState(t *testing.T) {
	file := filepath.Join(t.TempDir(), "update", "state.json")
	info := boot.BuildInfo{Version: "v1", Epoch: 100}
	st, err := loadState(file, info)
	if err != nil {
		t.Fatal(err)
	}
	if st.Slots[boot.SlotA] != st.Slots[boot.SlotB] || st.Slots[boot.SlotB].Build != 100 {
		t.Errorf("a new image's slots: %+v", st.Slots)
	}
	st.Slots[boot.SlotB] = nodeapi.OS{Version: "v2", Build: 200}
	st.Pending = boot.SlotB
	if err := st.save(file); err != nil {
		t.Fatal(err)
	}
	back, err := loadState(file, info)
	if err != nil || back.Pending != boot.SlotB || back.Slots[boot.SlotB].Version != "v2" {
		t.Errorf("read back %+v, %v", back, err)
	}
}

// The reboot into a trial asks the Pi 5's firmware for it; the reboot
// that gives a trial up, and any reboot of the other families, asks
// nothing.
func TestRebootAsksForTheTrial(t *testing.T) {
	for _, tc := range []struct {
		family boot.Family
		trial  bool
		want   string
	}{
		{boot.RPiTryboot, true, "0 tryboot"},
		{boot.RPiTryboot, false, ""},
		{boot.RPiUBoot, true, ""},
		{boot.UEFI, true, ""},
	} {
		got := "(no reboot)"
		n := &Node{Info: boot.BuildInfo{Family: tc.family}, Reboot: func(arg string) { got = arg }}
		n.setRebooting(boot.SlotB, tc.trial)
		if got != tc.want || n.rebooting != boot.SlotB {
			t.Errorf("%s, trial %t: rebooted into %q with %q, want %q", tc.family, tc.trial, n.rebooting, got, tc.want)
		}
	}
}

// A FAT slot is read back through its file system: each file the manifest
// lists must be there with its hash.
func TestReadBackSlotFiles(t *testing.T) {
	dir := t.TempDir()
	m := &bundle.Manifest{}
	for name, data := range map[string]string{"vmlinuz": "kernel", "initrd.img": "initramfs", "bcm2711-rpi-4-b.dtb": "dtb"} {
		sum := sha256.Sum256([]byte(data))
		m.Files = append(m.Files, bundle.File{Name: name, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])})
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dd := &deviceDisk{}
	if err := dd.readBack(m, dir); err != nil {
		t.Fatalf("a slot as written: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "initrd.img"), []byte("initramfs and more"), 0o644)
	if err := dd.readBack(m, dir); err == nil || !strings.Contains(err.Error(), "18 bytes, want 9") {
		t.Errorf("a longer file: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "initrd.img"), []byte("initramfZ"), 0o644)
	if err := dd.readBack(m, dir); err == nil || !strings.Contains(err.Error(), "read back initrd.img") || !strings.Contains(err.Error(), "did not keep") {
		t.Errorf("a changed file: %v", err)
	}
	os.Remove(filepath.Join(dir, "initrd.img"))
	if err := dd.readBack(m, dir); err == nil {
		t.Error("a missing file was read back")
	}
	if err := dd.readBack(m, ""); err != nil {
		t.Errorf("nothing written whole and no slot file system: %v", err)
	}
}
