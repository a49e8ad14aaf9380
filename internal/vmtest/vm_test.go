package vmtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairn-os/cairn/boards"
	gboot "github.com/cairn-os/cairn/boot"
	"github.com/cairn-os/cairn/boot/family"
	"github.com/cairn-os/cairn/internal/qemu"
)

const bootTimeout = 6 * time.Minute

// bootUntilReady starts the VM and waits for init's ready line.
func bootUntilReady(t *testing.T, board *boards.Profile, img string) *qemu.VM {
	t.Helper()
	vm, err := qemu.Start(qemu.Options{Board: board, Image: img})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(vm.Kill)
	at, err := vm.WaitFor("cairn: ready", 0, bootTimeout)
	if err == nil {
		// The whole line, and the debug console's greeting after it.
		_, err = vm.WaitFor("cairn-debug: commands", at, time.Minute)
	}
	if err != nil {
		t.Fatalf("%v\nconsole:\n%s", err, vm.Output())
	}
	t.Logf("ready after %s", vm.Since().Round(time.Second))
	return vm
}

func mustRun(t *testing.T, vm *qemu.VM, cmd string) string {
	t.Helper()
	out, err := vm.Run(cmd, time.Minute)
	if err != nil {
		t.Fatalf("%s: %v\nconsole:\n%s", cmd, err, vm.Output())
	}
	return out
}

// The tests of one VM below run in parallel with each other (as many at a
// time as there are cores: go test's -parallel is GOMAXPROCS), after the
// others: one software-emulated VM keeps about one core busy.

// TestQEMUArm64 and TestQEMUAmd64 boot the board's image twice (a power cut
// between) and check what only a boot proves: DHCP, host name, NTP time,
// files, the data partition created, grown and kept, and the root read-only.
// Then they check the data partition the VM made with e2fsck.
func TestQEMUArm64(t *testing.T) { bootTwice(t, "qemu-arm64", 34) }

func TestQEMUAmd64(t *testing.T) { bootTwice(t, "qemu-amd64", 46) }

// bootTwice's secs is about how long it takes (turn).
func bootTwice(t *testing.T, boardName string, secs int) {
	turn(t, 1, secs)
	board, err := boards.Get(boardName)
	if err != nil {
		t.Fatal(err)
	}
	need(t, board.QEMU.Binary, "e2fsck", "sgdisk", "sfdisk")
	ntpTime := time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)
	_, port, _ := net.SplitHostPort(ntpServer(t, ntpTime))
	config := fmt.Sprintf(`apiVersion: cairn.dev/v1alpha1
kind: Node
hostname: vmtest
time:
  ntp: ["10.0.2.2:%s"]
files:
  - path: /etc/motd
    content: hello from the files section
  - path: /var/lib/site/id
    content: site-42
    mode: "0600"
debug:
  console: true
`, port)
	dir := t.TempDir()
	img := buildImage(t, boardName, config, dir)
	const disk = 1536 << 20 // a "card" larger than the image
	if err := os.Truncate(img, disk); err != nil {
		t.Fatal(err)
	}

	vm := bootUntilReady(t, board, img)
	out := vm.Output()
	for _, want := range []string{
		"cairn: network: DHCP lease iface=eth0 addr=10.0.2.15",
		"cairn: hostname: hostname set hostname=vmtest",
		"cairn: time: time synchronised server=10.0.2.2:" + port,
		"cairn: data: first boot: formatting the data partition dev=/dev/vda4",
		"created=true",
		"cairn: ready slot=a ip=10.0.2.15 hostname=vmtest",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("console lacks %q", want)
		}
	}
	if !strings.Contains(out, "cairn: services: the config has no cluster: section, so this node runs no Kubernetes") {
		t.Errorf("console does not say why no cluster runs:\n%s", out)
	}
	if got := mustRun(t, vm, "hostname"); strings.TrimSpace(got) != "vmtest" {
		t.Errorf("hostname %q", got)
	}
	if got := mustRun(t, vm, "cat /etc/motd"); !strings.Contains(got, "hello from the files section") {
		t.Errorf("/etc/motd: %q", got)
	}
	if got := mustRun(t, vm, "date"); !strings.HasPrefix(strings.TrimSpace(got), "2031-03-04T05:0") {
		t.Errorf("guest time %q, want the NTP server's 2031-03-04T05:06", got)
	}
	mounts := mustRun(t, vm, "mounts")
	if !regexp.MustCompile(`/dev/vda2 / squashfs ro[, ]`).MatchString(mounts) {
		t.Errorf("root is not the read-only squashfs on vda2:\n%s", mounts)
	}
	if !regexp.MustCompile(`/dev/vda4 /var ext4 rw[, ]`).MatchString(mounts) {
		t.Errorf("data partition is not on /var:\n%s", mounts)
	}
	df := mustRun(t, vm, "df /var")
	m := regexp.MustCompile(`size=(\d+)`).FindStringSubmatch(df)
	if m == nil {
		t.Fatalf("df: %q", df)
	}
	size, _ := strconv.ParseInt(m[1], 10, 64)
	// The slots end at 641 MiB; the data partition takes the rest of 1.5 GiB.
	if size < 800<<20 {
		t.Errorf("data filesystem is %d MiB: not grown to the end of the disk", size>>20)
	}

	// Power cut, then boot again: the data partition and what was on it stay.
	// A broken cairn.yaml put on the boot partition in between is reported
	// and left out; the node boots with the config baked into the image.
	vm.Kill()
	onBootPartition(t, img, "cairn.yaml", "apiVersion: cairn.dev/v1alpha1\nkind: Node\nhostname: Bad_Name\n")
	vm = bootUntilReady(t, board, img)
	out = vm.Output()
	for _, want := range []string{
		`cairn.yaml on the boot partition:3:11: hostname: "Bad_Name" is not a valid host name`,
		"not using cairn.yaml on the boot partition; booting with the config baked into the image",
		"cairn: hostname: hostname set hostname=vmtest",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("console lacks %q", want)
		}
	}
	if strings.Contains(out, "first boot") || !strings.Contains(out, "created=false") {
		t.Errorf("second boot formatted the data partition again:\n%s", out)
	}
	if got := mustRun(t, vm, "cat /var/lib/cairn/clock"); !regexp.MustCompile(`(?m)^19\d{8}$`).MatchString(got) {
		t.Errorf("time saved by the first boot is gone: %q", got)
	}
	if got := mustRun(t, vm, "ls /var/lib/site"); !strings.Contains(got, "-rw------- 7 id") {
		t.Errorf("/var/lib/site: %q", got)
	}
	vm.Kill()

	// The real tools accept what the VM wrote.
	label, parts := partitions(t, img)
	if label != "gpt" || len(parts) != 4 || parts[3].Name != "cairn-data" {
		t.Fatalf("after boot: %s %+v", label, parts)
	}
	if end := (parts[3].Start + parts[3].Size) * 512; end < disk-2<<20 {
		t.Errorf("data partition ends at %d MiB of %d", end>>20, disk>>20)
	}
	run(t, "sgdisk", "-v", img)
	data := extract(t, img, parts[3])
	if out, err := exec.Command("e2fsck", "-fn", data).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -fn on the data partition: %v\n%s", err, out)
	}
}

// TestQEMUArm64Static boots a config with a static address, gateway,
// resolvers and search domain, and no DHCP.
func TestQEMUArm64Static(t *testing.T) {
	turn(t, 1, 14)
	need(t, "qemu-system-aarch64")
	config := `apiVersion: cairn.dev/v1alpha1
kind: Node
hostname: rack-07
network:
  interfaces:
    - name: eth0
      addresses: [10.0.2.15/24]
      gateway4: 10.0.2.2
  dns:
    servers: [10.0.2.3]
    search: [rack.example]
debug:
  console: true
`
	img := buildImage(t, "qemu-arm64", config, t.TempDir())
	if err := os.Truncate(img, 1<<30); err != nil {
		t.Fatal(err)
	}
	// The host name edited on the card after flashing wins over the image's.
	onBootPartition(t, img, "cairn.yaml", "apiVersion: cairn.dev/v1alpha1\nkind: Node\nhostname: rack-08\n")
	board, _ := boards.Get("qemu-arm64")
	vm := bootUntilReady(t, board, img)
	out := vm.Output()
	for _, want := range []string{
		"cairn: card config: found cairn.yaml on the boot partition",
		"cairn: config: using cairn.yaml on the boot partition sections=apiVersion,hostname,kind",
		"cairn: ready slot=a ip=10.0.2.15 hostname=rack-08",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("console lacks %q", want)
		}
	}
	if !strings.Contains(out, "cairn: network: static address iface=eth0 addr=10.0.2.15/24") || strings.Contains(out, "DHCP lease") {
		t.Errorf("network came up other than statically:\n%s", out)
	}
	if ip := mustRun(t, vm, "ip"); !strings.Contains(ip, "eth0") || !strings.Contains(ip, "10.0.2.15/24") {
		t.Errorf("ip: %q", ip)
	}
	rc := mustRun(t, vm, "cat /etc/resolv.conf")
	if !strings.Contains(rc, "nameserver 10.0.2.3") || !strings.Contains(rc, "search rack.example") {
		t.Errorf("resolv.conf: %q", rc)
	}
}

// TestRaspi3b boots the rpi3 SD-card image on QEMU's raspi3b machine,
// through the image's own U-Boot and boot.scr: QEMU cannot run the Pi
// firmware, so it starts U-Boot (from the boot partition, with the board's
// device tree) as the firmware would; the image itself is the SD card.
//
// A fresh card boots slot A. Then slot B is put on trial, as an update
// does (the family's chooser, on the boot partition's files): boot.scr
// notes the trial in cairn/tried.env (with U-Boot's env export, which the
// chooser's reader must read) and boots B, and init mounts the root from
// slot B and makes the data partition on the card. When init arms the
// watchdog, QEMU's raspi3b resets the machine at once (its model of the
// Pi's power management does not count the watchdog down), as a real Pi's
// watchdog does when a trial hangs: the card then boots A, since B had its
// trial. Once B is committed, it boots; with B's state file torn by a power
// cut, A boots again. B put on trial without its kernel fails to load,
// boot.scr resets the board, and A boots.
func TestRaspi3b(t *testing.T) {
	turn(t, 1, 150)
	need(t, "qemu-system-aarch64", "mcopy", "mdel", "sfdisk")
	dir := t.TempDir()
	img := buildImage(t, "rpi3", "apiVersion: cairn.dev/v1alpha1\nkind: Node\nhostname: pi3\n", dir)
	// QEMU wants an SD card whose size is a power of two.
	if err := os.Truncate(img, 2<<30); err != nil {
		t.Fatal(err)
	}
	label, parts := partitions(t, img)
	if label != "dos" || len(parts) < 3 {
		t.Fatalf("rpi3 image: %s %+v", label, parts)
	}
	bootPart := fmt.Sprintf("%s@@%d", img, parts[0].Start*512)
	for _, f := range []string{"u-boot.bin", "bcm2837-rpi-3-b.dtb"} {
		run(t, "mcopy", "-n", "-i", bootPart, "::"+f, filepath.Join(dir, f))
	}
	board, _ := boards.Get("rpi3")
	// boot starts the card; U-Boot's lines come first.
	boot := func(reboot bool) *qemu.VM {
		vm, err := qemu.Start(qemu.Options{
			Board: board, Image: img, Reboot: reboot,
			Kernel: filepath.Join(dir, "u-boot.bin"), DTB: filepath.Join(dir, "bcm2837-rpi-3-b.dtb"),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(vm.Kill)
		return vm
	}
	// expect waits for lines in order, under one deadline.
	expect := func(vm *qemu.VM, timeout time.Duration, lines ...string) {
		t.Helper()
		deadline := time.Now().Add(timeout)
		at := 0
		for _, want := range lines {
			var err error
			if at, err = vm.WaitFor(want, at, time.Until(deadline)); err != nil {
				t.Fatalf("%v\nconsole:\n%s", err, vm.Output())
			}
		}
	}
	// The chooser works on the boot partition's state files, copied out
	// to a folder (with boot.scr's record of its last trial) and back.
	state := filepath.Join(dir, "state")
	os.MkdirAll(filepath.Join(state, "cairn"), 0o755)
	chooser, err := family.ChooserOf(gboot.RPiUBoot)
	if err != nil {
		t.Fatal(err)
	}
	change := func(what string, op func(dir string) error) {
		t.Helper()
		for _, f := range []string{gboot.UBootSlotFile(gboot.SlotA), gboot.UBootSlotFile(gboot.SlotB), gboot.UBootTriedFile} {
			run(t, "mcopy", "-o", "-n", "-i", bootPart, "::"+f, filepath.Join(state, f))
		}
		if err := op(state); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		for _, s := range []string{gboot.SlotA, gboot.SlotB} {
			run(t, "mcopy", "-o", "-i", bootPart, filepath.Join(state, gboot.UBootSlotFile(s)), "::"+gboot.UBootSlotFile(s))
		}
	}
	// U-Boot's lines for a boot that is not followed further.
	slotOnly := func(slot, part string) {
		t.Helper()
		vm := boot(false)
		expect(vm, 2*time.Minute, "cairn: booting slot "+slot+" from partition "+part)
		vm.Kill()
		vm.Wait()
		if strings.Contains(vm.Output(), "on trial") {
			t.Errorf("slot %s booted on trial:\n%s", slot, vm.Output())
		}
	}
	slotOnly("a", "2")

	change("arm b", func(dir string) error { return chooser.Arm(dir, gboot.SlotB) })
	vm := boot(true)
	// The emulated SD card is slow: formatting the data partition took 2
	// minutes here on an idle machine and over 5 with a build beside it.
	expect(vm, 15*time.Minute,
		"cairn: slot b on trial, once",
		"cairn: booting slot b from partition 3",
		"cairn: cmdline: booting slot=b",
		"cairn: disk: found boot disk dev=/dev/mmcblk0",
		"cairn: root: root mounted read-only from=/dev/loop0",
		"cairn: data: first boot: formatting the data partition dev=/dev/mmcblk0p4",
		"cairn: data: data partition mounted on /var dev=/dev/mmcblk0p4",
		"cairn: mounts: root is read-only fs=squashfs",
		"cairn: hostname: hostname set hostname=pi3",
		"cairn: modules: modules loaded count=",
		// The reset when init arms the watchdog.
		"cairn: slot b had its trial, booting slot a",
		"cairn: booting slot a from partition 2",
	)
	t.Logf("slot b on trial, then a, after %s", vm.Since().Round(time.Second))
	// The board's modules (the USB controller, the Ethernet chips behind
	// it, the Wi-Fi, the watchdog) all load.
	if strings.Contains(vm.Output(), "could not load") {
		t.Errorf("a module of the Pi 3 did not load:\n%s", vm.Output())
	}
	vm.Kill()
	vm.Wait()
	// What U-Boot's env export wrote, the chooser's reader reads.
	tried := filepath.Join(dir, "tried.env")
	run(t, "mcopy", "-n", "-i", bootPart, "::"+gboot.UBootTriedFile, tried)
	data, err := os.ReadFile(tried)
	if err != nil {
		t.Fatal(err)
	}
	if vars, err := gboot.ParseUBootEnv(data); err != nil || vars["cairn_tried"] != "2" {
		t.Errorf("U-Boot's %s: %v (%v), want cairn_tried=2, the generation of b's trial", gboot.UBootTriedFile, vars, err)
	}

	change("commit b", func(dir string) error { return chooser.Commit(dir, gboot.SlotB) })
	slotOnly("b", "3")

	change("a power cut tearing b's state", func(dir string) error {
		f := filepath.Join(dir, gboot.UBootSlotFile(gboot.SlotB))
		b, err := os.ReadFile(f)
		if err == nil {
			copy(b[8:], "torn")
			err = os.WriteFile(f, b, 0o644)
		}
		return err
	})
	slotOnly("a", "2")

	// B without its kernel, on trial (its generation above the one
	// boot.scr tried, which B's torn file forgot): the trial fails to load,
	// boot.scr resets the board, and the card boots A.
	slotB := fmt.Sprintf("%s@@%d", img, parts[2].Start*512)
	run(t, "mdel", "-i", slotB, "::vmlinuz")
	change("arm b", func(dir string) error { return chooser.Arm(dir, gboot.SlotB) })
	vm = boot(true)
	expect(vm, 2*time.Minute,
		"cairn: slot b on trial, once",
		"cairn: slot b did not start, resetting",
		"cairn: slot b had its trial, booting slot a",
		"cairn: booting slot a from partition 2")
	vm.Kill()
}
