package qemu

import (
	"runtime"
	"slices"
	"testing"

	"github.com/cairn-os/cairn/boards"
)

// Without KVM, the VMs share this machine's cores, one or two each;
// Options.SMP, when given, wins.
func TestCPUs(t *testing.T) {
	t.Setenv("CAIRN_ACCEL", "tcg")
	cores := runtime.NumCPU()
	for _, tc := range []struct{ vms, want int }{
		{1, min(2, cores)},
		{cores, 1},
		{cores + 1, 1},
		{0, min(2, cores)},
	} {
		if got := CPUs("qemu-system-aarch64", tc.vms); got != tc.want {
			t.Errorf("%d VMs on %d cores: %d CPUs each, want %d", tc.vms, cores, got, tc.want)
		}
	}
	t.Setenv("CAIRN_ACCEL", "kvm")
	if got := CPUs("qemu-system-aarch64", 8); got != 2 {
		t.Errorf("with KVM: %d CPUs, want 2", got)
	}

	t.Setenv("CAIRN_ACCEL", "tcg")
	board, err := boards.Get("qemu-amd64")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		smp  int
		want string
	}{{0, "2"}, {1, "1"}, {3, "3"}} {
		if tc.smp == 0 && cores < 2 {
			tc.want = "1"
		}
		_, args, err := Args(Options{Board: board, Image: "x.img", SMP: tc.smp}, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if i := slices.Index(args, "-smp"); i < 0 || args[i+1] != tc.want {
			t.Errorf("SMP %d: %v, want -smp %s", tc.smp, args, tc.want)
		}
	}
}
