package boot

import (
	"strings"
	"testing"
)

func TestCmdlineRoundTrip(t *testing.T) {
	c := Cmdline(SlotB, "1a2b3c4d", []string{"tty0", "ttyS0,115200"}, []string{"quiet"})
	want := "console=tty0 console=ttyS0,115200 cairn.slot=b cairn.disk=1a2b3c4d panic=10 transparent_hugepage=madvise quiet"
	if c != want {
		t.Fatalf("got %q", c)
	}
	args := ParseCmdline(c)
	if args[ArgSlot] != "b" || args[ArgDisk] != "1a2b3c4d" {
		t.Errorf("parsed %v", args)
	}
}

func TestAutoboot(t *testing.T) {
	want := "[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\nboot_partition=3\n"
	if got := Autoboot(SlotA); got != want {
		t.Errorf("got %q", got)
	}
	if Other(SlotA) != SlotB || Other(SlotB) != SlotA || SlotPart(SlotB) != 3 {
		t.Error("slot arithmetic")
	}
}

func TestUBootImageHeader(t *testing.T) {
	img := UBootImage(UBootScript([]string{"ttyS1,115200"}, "12345678", nil), 0)
	if img[0] != 0x27 || img[1] != 0x05 || img[30] != 6 {
		t.Fatalf("header % x", img[:32])
	}
	if !strings.Contains(string(img[72:]), "cairn.slot=${boot_slot} cairn.disk=12345678") {
		t.Errorf("script: %s", img[72:])
	}
}
