package boards

import (
	"errors"
	"strings"
	"testing"

	"github.com/cairn-os/cairn/boot"
)

func TestAllProfilesLoad(t *testing.T) {
	want := []string{"generic-arm64", "pc-amd64", "qemu-amd64", "qemu-arm64", "rpi3", "rpi4", "rpi5"}
	if got := strings.Join(Names(), ","); got != strings.Join(want, ",") {
		t.Fatalf("boards %s, want %s", got, strings.Join(want, ","))
	}
	for _, n := range Names() {
		p, err := Get(n)
		if err != nil {
			t.Errorf("%s: %v", n, err)
			continue
		}
		if p.Family == boot.UEFI && p.Layout.Table != "gpt" {
			t.Errorf("%s: uefi on %s", n, p.Layout.Table)
		}
	}
}

func TestUnknownBoard(t *testing.T) {
	_, err := Get("rpi9")
	if !errors.Is(err, ErrUnknown) || !strings.Contains(err.Error(), "choose one of generic-arm64") {
		t.Fatalf("got %v", err)
	}
}

func TestValidateRejects(t *testing.T) {
	_, err := parse("x", []byte("name: x\narch: riscv64\nfamily: uefi\nkernel: {package: k}\nconsole: [ttyS0]\nsquashfs: zstd\nlayout: {table: mbr, bootMiB: 64, slotMiB: 64}\n"))
	if err == nil || !strings.Contains(err.Error(), "arch \"riscv64\"") || !strings.Contains(err.Error(), "uses gpt") {
		t.Fatalf("got %v", err)
	}
	_, err = parse("x", []byte("name: x\nbogus: 1\n"))
	if err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("unknown field accepted: %v", err)
	}
}

func TestConsoleEntries(t *testing.T) {
	p, err := Get("qemu-amd64")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(p.Console, " "); got != "tty0 ttyS0,115200" {
		t.Errorf("console %q", got)
	}
}
