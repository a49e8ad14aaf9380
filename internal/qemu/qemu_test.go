package qemu

import (
	"os"
	"os/exec"
	"slices"
	"testing"

	"github.com/cairn-os/cairn/boards"
)

// Options.SMP is QEMU's -smp, 2 when not given.
func TestSMP(t *testing.T) {
	b := withoutFirmware(t)
	for _, tc := range []struct {
		smp  int
		want string
	}{{0, "2"}, {1, "1"}, {3, "3"}} {
		_, args, err := Args(Options{Board: b, Image: "x.img", SMP: tc.smp}, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if i := slices.Index(args, "-smp"); i < 0 || args[i+1] != tc.want {
			t.Errorf("SMP %d: %v, want -smp %s", tc.smp, args, tc.want)
		}
	}
}

// withoutFirmware is the qemu-amd64 board without its UEFI firmware, which
// this machine may lack, and with TCG, which every machine has.
func withoutFirmware(t *testing.T) *boards.Profile {
	t.Setenv("CAIRN_ACCEL", "tcg")
	board, err := boards.Get("qemu-amd64")
	if err != nil {
		t.Fatal(err)
	}
	b, q := *board, *board.QEMU
	q.Firmware, q.Vars = nil, nil
	b.QEMU = &q
	return &b
}

// Once Wait returns, the VM's folder is gone, so that a program that exits
// then (cairn vm after Ctrl-C) leaves nothing behind.
func TestWaitRemovesTheFolder(t *testing.T) {
	b := withoutFirmware(t)
	if _, err := exec.LookPath(b.QEMU.Binary); err != nil {
		t.Skipf("%s is missing (make deps installs it)", b.QEMU.Binary)
	}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	// QEMU stops at once: the image does not exist.
	v, err := Start(Options{Board: b, Image: "/nonexistent.img"})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Wait(); err == nil {
		t.Fatalf("QEMU booted a missing image:\n%s", v.Output())
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("left in TMPDIR after Wait: %v", left)
	}
}
