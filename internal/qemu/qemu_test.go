package qemu

import (
	"slices"
	"testing"

	"github.com/cairn-os/cairn/boards"
)

// Options.SMP is QEMU's -smp, 2 when not given.
func TestSMP(t *testing.T) {
	t.Setenv("CAIRN_ACCEL", "tcg")
	board, err := boards.Get("qemu-amd64")
	if err != nil {
		t.Fatal(err)
	}
	// Without its UEFI firmware, which this machine may lack.
	b, q := *board, *board.QEMU
	q.Firmware, q.Vars = nil, nil
	b.QEMU = &q
	for _, tc := range []struct {
		smp  int
		want string
	}{{0, "2"}, {1, "1"}, {3, "3"}} {
		_, args, err := Args(Options{Board: &b, Image: "x.img", SMP: tc.smp}, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if i := slices.Index(args, "-smp"); i < 0 || args[i+1] != tc.want {
			t.Errorf("SMP %d: %v, want -smp %s", tc.smp, args, tc.want)
		}
	}
}
