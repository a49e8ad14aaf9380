package family

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"unicode/utf16"

	"github.com/cairn-os/cairn/boot"
)

// TestInstallOrder: the order Install reads a slot's files in, the order a
// bundle carries them in, lists each file once.
func TestInstallOrder(t *testing.T) {
	for _, f := range boot.Families {
		home, _ := Of(f)
		s, err := home.Slot(testParts(t))
		if err != nil {
			t.Fatal(err)
		}
		order, err := InstallOrder(home, s)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		var want []string
		for _, e := range s.Files.Walk() {
			if e.Mode.IsRegular() {
				want = append(want, e.Path)
			}
		}
		got := slices.Clone(order)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s: install reads %v, want each of %v once", f, order, want)
		}
		if f == boot.UEFI && !slices.Equal(order, []string{Kernel, Initrd, Root}) {
			t.Errorf("uefi order %v", order)
		}
	}
}

// TestUEFIChooser commits and arms slots on an ESP in a folder, with the
// EFI variables in another.
func TestUEFIChooser(t *testing.T) {
	esp, vars := t.TempDir(), t.TempDir()
	old, oldCheck := efiVarPath, checkEFIVars
	efiVarPath = func(name string) string { return filepath.Join(vars, name) }
	checkEFIVars = func() error { return nil }
	t.Cleanup(func() { efiVarPath, checkEFIVars = old, oldCheck })
	home, _ := Of(boot.UEFI)
	fresh, err := home.Fresh(testParts(t), "disk")
	if err != nil {
		t.Fatal(err)
	}
	conf, _ := fresh.Get(loaderConf)
	os.MkdirAll(filepath.Join(esp, "loader"), 0o755)
	os.WriteFile(filepath.Join(esp, loaderConf), conf.Data, 0o644)
	c, _ := ChooserOf(boot.UEFI)

	if got, err := c.Committed(esp); err != nil || got != boot.SlotA {
		t.Fatalf("fresh image commits %q (%v), want a", got, err)
	}
	os.WriteFile(efiVarPath(efiDefault), []byte("stale"), 0o644)
	if err := c.Arm(esp, boot.SlotB); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(efiVarPath(efiOneShot))
	u := make([]uint16, (len(raw)-4)/2)
	for i := range u {
		u[i] = uint16(raw[4+2*i]) | uint16(raw[5+2*i])<<8
	}
	if got := string(utf16.Decode(u)); got != "cairn-b.conf\x00" || raw[0] != 7 {
		t.Errorf("one-shot variable %q, attributes %d", got, raw[0])
	}
	if err := c.Disarm(esp); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(efiVarPath(efiOneShot)); !os.IsNotExist(err) {
		t.Errorf("disarm left the one-shot variable: %v", err)
	}
	if err := c.Arm(esp, boot.SlotB); err != nil {
		t.Fatal(err)
	}
	if err := c.Commit(esp, boot.SlotB); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Committed(esp); got != boot.SlotB {
		t.Errorf("after commit: %q, want b", got)
	}
	after, _ := os.ReadFile(filepath.Join(esp, loaderConf))
	if len(after) != len(conf.Data) || string(after) != boot.LoaderConf(boot.SlotB) {
		t.Errorf("loader.conf after commit: %q", after)
	}
	if _, err := os.Stat(efiVarPath(efiDefault)); !os.IsNotExist(err) {
		t.Errorf("a default chosen in the menu survived the commit: %v", err)
	}
	if _, err := ChooserOf(boot.RPiTryboot); err == nil {
		t.Error("tryboot has a chooser, but it is not built yet")
	}
}
