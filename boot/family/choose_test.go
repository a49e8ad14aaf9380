package family

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
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
}

// TestTrybootChooser arms, commits and rolls back slots on a Pi 5 boot
// partition in a folder: autoboot.txt names the committed slot, a trial
// writes nothing but is asked for by the reboot, and a commit rewrites
// the file in place.
func TestTrybootChooser(t *testing.T) {
	dir := t.TempDir()
	home, _ := Of(boot.RPiTryboot)
	fresh, err := home.Fresh(testParts(t), "disk")
	if err != nil {
		t.Fatal(err)
	}
	e, _ := fresh.Get(autobootFile)
	name := filepath.Join(dir, autobootFile)
	os.WriteFile(name, e.Data, 0o644)
	c, err := ChooserOf(boot.RPiTryboot)
	if err != nil {
		t.Fatal(err)
	}
	committed := func(want string) {
		t.Helper()
		if got, err := c.Committed(dir); got != want || err != nil {
			t.Fatalf("committed slot %q, %v; want %s", got, err, want)
		}
		if got, _ := os.ReadFile(name); string(got) != boot.Autoboot(want) {
			t.Fatalf("autoboot.txt with slot %s committed:\n%s", want, got)
		}
	}
	committed(boot.SlotA)
	if TrialReboot(boot.RPiTryboot) != "0 tryboot" || TrialReboot(boot.RPiUBoot) != "" || TrialReboot(boot.UEFI) != "" {
		t.Error("TrialReboot: only the tryboot family asks the firmware for a trial")
	}
	if err := c.Arm(dir, boot.SlotA); err == nil {
		t.Error("the committed slot was put on trial")
	}
	// Arming changes nothing on the card: the firmware's trial flag is
	// the reboot's.
	then := time.Now().Add(-time.Hour).Truncate(time.Second)
	os.Chtimes(name, then, then)
	if err := c.Disarm(dir); err != nil {
		t.Fatal(err)
	}
	if err := c.Arm(dir, boot.SlotB); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(name); !fi.ModTime().Equal(then) {
		t.Error("arming a trial wrote autoboot.txt")
	}
	committed(boot.SlotA)

	// The commit writes the same length over the file, which keeps its
	// inode; a second commit writes nothing.
	before, _ := os.Stat(name)
	if err := c.Commit(dir, boot.SlotB); err != nil {
		t.Fatal(err)
	}
	committed(boot.SlotB)
	after, _ := os.Stat(name)
	if !os.SameFile(before, after) || after.Size() != before.Size() {
		t.Error("the commit replaced autoboot.txt instead of rewriting it in place")
	}
	os.Chtimes(name, then, then)
	if err := c.Commit(dir, boot.SlotB); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(name); !fi.ModTime().Equal(then) {
		t.Error("committing the committed slot again wrote autoboot.txt")
	}
	// Rolling back: a trial of a, then its commit.
	if err := c.Arm(dir, boot.SlotA); err != nil {
		t.Fatal(err)
	}
	if err := c.Commit(dir, boot.SlotA); err != nil {
		t.Fatal(err)
	}
	committed(boot.SlotA)

	// A file edited by hand that still names a slot under [all] is read,
	// and written as Autoboot's again before a trial, so that [tryboot]
	// names the other slot; beyond the firmware's 512 bytes nothing counts.
	os.WriteFile(name, []byte("# mine\n[all]\nboot_partition = 3\n[tryboot]\nboot_partition=3\n"+strings.Repeat("#", 600)+"\nboot_partition=2\n"), 0o644)
	if got, err := c.Committed(dir); got != boot.SlotB || err != nil {
		t.Fatalf("hand-edited autoboot.txt: committed %q, %v", got, err)
	}
	if err := c.Arm(dir, boot.SlotA); err != nil {
		t.Fatal(err)
	}
	committed(boot.SlotB)
	// Lines before any section apply to all.
	os.WriteFile(name, []byte("boot_partition=3\n"), 0o644)
	if got, err := c.Committed(dir); got != boot.SlotB || err != nil {
		t.Errorf("autoboot.txt without sections: committed %q, %v", got, err)
	}
	// One that names no slot is an error that says what to do.
	for _, bad := range []string{"", "[all]\nboot_partition=1\n", "[tryboot]\nboot_partition=2\n", "\x00\x00garbage"} {
		os.WriteFile(name, []byte(bad), 0o644)
		if _, err := c.Committed(dir); err == nil || !strings.Contains(err.Error(), "flash a new image") {
			t.Errorf("autoboot.txt %q: %v", bad, err)
		}
		if err := c.Commit(dir, boot.SlotA); err == nil {
			t.Errorf("autoboot.txt %q was committed over", bad)
		}
	}
	os.Remove(name)
	if _, err := c.Committed(dir); err == nil || !strings.Contains(err.Error(), "autoboot.txt") {
		t.Errorf("no autoboot.txt: %v", err)
	}
}

// TestUBootChooser arms, commits and rolls back slots on a Pi 3 boot
// partition in a folder, as boot.scr reads it. No change writes the
// committed slot's file, and each rewrites one file in place; a state file
// torn by a power cut reads as none, and the other slot is committed.
func TestUBootChooser(t *testing.T) {
	dir := t.TempDir()
	home, _ := Of(boot.RPiUBoot)
	fresh, err := home.Fresh(testParts(t), "disk")
	if err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(dir, "cairn"), 0o755)
	for _, name := range []string{boot.UBootSlotFile(boot.SlotA), boot.UBootSlotFile(boot.SlotB), boot.UBootTriedFile} {
		e, ok := fresh.Get(name)
		if !ok || len(e.Data) != boot.UBootEnvSize {
			t.Fatalf("the fresh boot partition's %s: %v, %d bytes", name, ok, len(e.Data))
		}
		os.WriteFile(filepath.Join(dir, name), e.Data, 0o644)
	}
	c, err := ChooserOf(boot.RPiUBoot)
	if err != nil {
		t.Fatal(err)
	}
	file := func(slot string) []byte {
		b, _ := os.ReadFile(filepath.Join(dir, boot.UBootSlotFile(slot)))
		return b
	}
	state := func(slot string) string {
		vars, err := boot.ParseUBootEnv(file(slot))
		if err != nil {
			return err.Error()
		}
		return vars["cairn_"+slot+"_state"] + " " + vars["cairn_"+slot+"_gen"]
	}
	// step runs op and checks the committed slot after it, and that op
	// did not write the file of the slot committed before it (its
	// modification time and bytes).
	step := func(what string, op func() error, committed, a, b string) {
		t.Helper()
		before, err := c.Committed(dir)
		if err != nil {
			t.Fatal(err)
		}
		kept := filepath.Join(dir, boot.UBootSlotFile(before))
		old := file(before)
		then := time.Now().Add(-time.Hour)
		os.Chtimes(kept, then, then)
		if err := op(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if fi, err := os.Stat(kept); err != nil || !fi.ModTime().Equal(then) || !bytes.Equal(file(before), old) {
			t.Errorf("%s wrote the file of slot %s, committed before it", what, before)
		}
		if got, err := c.Committed(dir); got != committed || err != nil {
			t.Errorf("after %s: committed %q (%v), want %s", what, got, err, committed)
		}
		if got := state(boot.SlotA) + ", " + state(boot.SlotB); got != a+", "+b {
			t.Errorf("after %s: states %s, want %s, %s", what, got, a, b)
		}
		for _, slot := range []string{boot.SlotA, boot.SlotB} {
			if n := len(file(slot)); n != boot.UBootEnvSize {
				t.Errorf("after %s: slot %s's file is %d bytes", what, slot, n)
			}
		}
	}
	step("a fresh image", func() error { return nil }, "a", "good 1", "none 0")
	step("disarm", func() error { return c.Disarm(dir) }, "a", "good 1", "none 0")
	step("arm b", func() error { return c.Arm(dir, boot.SlotB) }, "a", "good 1", "trial 2")
	if err := c.Arm(dir, boot.SlotA); err == nil {
		t.Error("the committed slot was put on trial")
	}
	step("commit b", func() error { return c.Commit(dir, boot.SlotB) }, "b", "good 1", "good 2")
	step("commit b again", func() error { return c.Commit(dir, boot.SlotB) }, "b", "good 1", "good 2")
	// A rollback: the older slot on trial, then committed.
	step("arm a", func() error { return c.Arm(dir, boot.SlotA) }, "b", "trial 3", "good 2")
	step("commit a", func() error { return c.Commit(dir, boot.SlotA) }, "a", "good 3", "good 2")
	// Before an install writes b, b is no fallback any more.
	step("disarm", func() error { return c.Disarm(dir) }, "a", "good 3", "none 2")
	step("arm b", func() error { return c.Arm(dir, boot.SlotB) }, "a", "good 3", "trial 4")

	// A power cut while b's file was rewritten, in the commit: b's file
	// torn or cut short, a is still committed.
	trial := file(boot.SlotB)
	if err := c.Commit(dir, boot.SlotB); err != nil {
		t.Fatal(err)
	}
	flipped := file(boot.SlotB)
	flipped[10] ^= 1
	for _, torn := range [][]byte{flipped, append(trial[:4:4], file(boot.SlotB)[4:]...), nil} {
		os.WriteFile(filepath.Join(dir, boot.UBootSlotFile(boot.SlotB)), torn, 0o644)
		if got, err := c.Committed(dir); got != boot.SlotA || err != nil {
			t.Errorf("with b's state torn (%d bytes): committed %q (%v), want a", len(torn), got, err)
		}
	}
	// boot.scr had started b's trial, generation 4. The next install
	// writes b's state whole again, and its trial is a generation boot.scr
	// has not tried, though b's file forgot 4.
	tried, _ := boot.UBootEnv(map[string]string{"cairn_tried": "4"})
	os.WriteFile(filepath.Join(dir, boot.UBootTriedFile), tried, 0o644)
	step("disarm", func() error { return c.Disarm(dir) }, "a", "good 3", "none 0")
	step("arm b", func() error { return c.Arm(dir, boot.SlotB) }, "a", "good 3", "trial 5")
	// A file cut short reads as if zeros followed, as in boot.scr, which
	// clears the memory it loads a state file into.
	os.WriteFile(filepath.Join(dir, boot.UBootSlotFile(boot.SlotB)), file(boot.SlotB)[:64], 0o644)
	if got := state(boot.SlotB); got != "trial 5" {
		t.Errorf("b's state cut to 64 bytes: %s, want trial 5", got)
	}
	// A file grown long reads as its first sector, as boot.scr reads it.
	os.WriteFile(filepath.Join(dir, boot.UBootSlotFile(boot.SlotB)), append(file(boot.SlotB)[:64], make([]byte, 1<<20)...), 0o644)
	if got := state(boot.SlotB); got != "trial 5" {
		t.Errorf("b's state grown to 1 MiB: %s, want trial 5", got)
	}
	if slots, err := ubootSlots(dir); err != nil || slots[boot.SlotB] != (ubootSlot{state: stateTrial, gen: 5}) {
		t.Errorf("the chooser reads b's state grown to 1 MiB as %+v (%v), want trial 5", slots[boot.SlotB], err)
	}
	if _, err := c.Committed(t.TempDir()); err == nil || !strings.Contains(err.Error(), "flash a new image") {
		t.Errorf("a boot partition without slot states: %v", err)
	}
}

// TestUBootEnv: what UBootEnv writes reads back, and a flipped bit fails
// the checksum.
func TestUBootEnv(t *testing.T) {
	env, err := boot.UBootEnv(map[string]string{"b": "2", "a": "x=y"})
	if err != nil {
		t.Fatal(err)
	}
	if len(env) != boot.UBootEnvSize || !bytes.HasPrefix(env[4:], []byte("a=x=y\x00b=2\x00\x00")) {
		t.Errorf("env % x", env[:20])
	}
	if vars, err := boot.ParseUBootEnv(env); err != nil || vars["a"] != "x=y" || vars["b"] != "2" || len(vars) != 2 {
		t.Errorf("read back %v, %v", vars, err)
	}
	env[300] ^= 1
	if _, err := boot.ParseUBootEnv(env); err == nil {
		t.Error("a flipped bit was not noticed")
	}
	if _, err := boot.UBootEnv(map[string]string{"a": strings.Repeat("x", boot.UBootEnvSize)}); err == nil {
		t.Error("an environment too big for its sector was written")
	}
}

// piFirmware is a model of the Pi 5 firmware's choice, as its
// documentation gives it: it reads the first 512 bytes of autoboot.txt;
// [all] applies always and [tryboot] only when the tryboot flag is set,
// the last boot_partition winning; a trial reads the partition's
// config.txt only with tryboot_a_b=1 (else tryboot.txt, which no slot
// has). It clears the flag as it boots.
type piFirmware struct {
	dir     string
	tryboot bool
}

// restart is reboot(2) with arg: the Raspberry Pi kernel sets the flag
// when arg holds " tryboot".
func (p *piFirmware) restart(arg string) { p.tryboot = strings.Contains(arg, " tryboot") }

// boot is the partition the firmware boots, or 0 for none.
func (p *piFirmware) boot() int {
	data, _ := os.ReadFile(filepath.Join(p.dir, autobootFile))
	data = data[:min(len(data), autobootSize)]
	section, part, ab := "[all]", 0, false
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "[") {
			section = line
			continue
		}
		if section != "[all]" && !(section == "[tryboot]" && p.tryboot) {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "boot_partition":
			part, _ = strconv.Atoi(v)
		case "tryboot_a_b":
			ab = v == "1"
		}
	}
	if p.tryboot && !ab {
		part = 0
	}
	p.tryboot = false
	return part
}

// TestTrybootFirmwareModel runs updates through the chooser and the
// reboot's argument against the firmware model: a trial boots once, a
// reset or power cut during it boots the committed slot, and a commit cut
// short boots one slot or the other.
func TestTrybootFirmwareModel(t *testing.T) {
	dir := t.TempDir()
	home, _ := Of(boot.RPiTryboot)
	fresh, _ := home.Fresh(testParts(t), "disk")
	e, _ := fresh.Get(autobootFile)
	os.WriteFile(filepath.Join(dir, autobootFile), e.Data, 0o644)
	c, _ := ChooserOf(boot.RPiTryboot)
	fw := &piFirmware{dir: dir}
	expect := func(what string, slot string) {
		t.Helper()
		if got := fw.boot(); got != boot.SlotPart(slot) {
			t.Fatalf("%s: the firmware boots partition %d, want slot %s's", what, got, slot)
		}
	}
	trial := func(slot string) {
		t.Helper()
		if err := c.Disarm(dir); err != nil {
			t.Fatal(err)
		}
		if err := c.Arm(dir, slot); err != nil {
			t.Fatal(err)
		}
		fw.restart(TrialReboot(boot.RPiTryboot))
	}
	expect("a fresh card", boot.SlotA)
	trial(boot.SlotB)
	expect("a trial of b", boot.SlotB)
	fw.restart("") // the watchdog, or init giving the trial up
	expect("after the trial", boot.SlotA)
	trial(boot.SlotB)
	expect("a second trial of b", boot.SlotB)
	old, _ := os.ReadFile(filepath.Join(dir, autobootFile))
	if err := c.Commit(dir, boot.SlotB); err != nil {
		t.Fatal(err)
	}
	fw.restart("")
	expect("b committed", boot.SlotB)
	// A commit cut short leaves the old sector or the new one.
	committed, _ := os.ReadFile(filepath.Join(dir, autobootFile))
	for _, sector := range [][]byte{old, committed} {
		os.WriteFile(filepath.Join(dir, autobootFile), sector, 0o644)
		if got := fw.boot(); got != boot.SlotPart(boot.SlotA) && got != boot.SlotPart(boot.SlotB) {
			t.Errorf("after a commit cut short (%q), the firmware boots partition %d", sector, got)
		}
	}
	// Rolling back to a: its trial, then a power cut during it.
	trial(boot.SlotA)
	expect("a trial of a", boot.SlotA)
	expect("a power cut during it", boot.SlotB)
}
