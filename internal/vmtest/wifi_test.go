package vmtest

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairn-os/cairn/boards"
	"github.com/cairn-os/cairn/internal/qemu"
	"github.com/u-root/u-root/pkg/cpio"
)

// wifiConfig is a node on Wi-Fi and Ethernet: its preferred network has a
// passphrase the access point does not take, the other is hidden and
// WPA3-SAE only. mac80211_hwsim gives the VM radios.
const wifiConfig = `apiVersion: cairn.dev/v1alpha1
kind: Node
hostname: wifi
modules: [mac80211_hwsim]
network:
  interfaces:
    - name: "e*"
    - name: wlan0
  wifiCountry: DE
  wifi:
    - ssid: cairn-wpa2
      psk: a-wrong-passphrase
    - ssid: cairn-sae
      psk: 'sae "quoted" #1'
      hidden: true
debug:
  console: true
`

// TestWiFi boots a node on Wi-Fi in a VM whose kernel simulates radios
// (mac80211_hwsim), beside two access points that the test runs in the
// same VM with the image's own wpa_supplicant in AP mode
// (testdata/wifiap): cairn-wpa2, WPA2-PSK, whose passphrase the node does
// not have, and cairn-sae, hidden and WPA3-SAE only, which restarts after
// its third DHCP request. The VM boots the image's kernel directly, with
// the test's program added to the image's initramfs.
//
// The node sets its country, which the kernel takes from the regulatory
// database the image carries; says once per attempt that cairn-wpa2
// refused its passphrase; joins cairn-sae, the next in its order of
// preference, by name and with SAE; gets a DHCP lease on the Wi-Fi link and
// renews it; says when the access point goes and joins it again when it is
// back, with a new lease; and keeps Ethernet up beside Wi-Fi, its default
// route preferred.
func TestWiFi(t *testing.T) {
	needArm64(t)
	turn(t, 1, 81)
	need(t, "mcopy", "sfdisk")
	dir := t.TempDir()
	img := buildImage(t, "qemu-arm64", wifiConfig, dir)
	if err := os.Truncate(img, 2<<30); err != nil {
		t.Fatal(err)
	}
	_, parts := partitions(t, img)
	esp := fmt.Sprintf("%s@@%d", img, parts[0].Start*512)
	for _, f := range []string{"a/vmlinuz", "a/initrd.img", "loader/entries/cairn-a.conf"} {
		run(t, "mcopy", "-n", "-i", esp, "::"+f, filepath.Join(dir, filepath.Base(f)))
	}
	entry, err := os.ReadFile(filepath.Join(dir, "cairn-a.conf"))
	if err != nil {
		t.Fatal(err)
	}
	options := regexp.MustCompile(`(?m)^options (.*)$`).FindSubmatch(entry)
	if options == nil {
		t.Fatalf("no options in the loader entry:\n%s", entry)
	}
	initrd := filepath.Join(dir, "initrd-wifiap.img")
	addToInitramfs(t, filepath.Join(dir, "initrd.img"), initrd, "wifiap", testProgram(t, "wifiap", "arm64"))

	board, _ := boards.Get("qemu-arm64")
	vm, err := qemu.Start(qemu.Options{Board: board, Image: img,
		Kernel: filepath.Join(dir, "vmlinuz"), Initrd: initrd, Append: string(options[1]) + " rdinit=/wifiap"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(vm.Kill)
	t.Cleanup(func() {
		if failedNow(t) {
			for _, f := range []string{"/run/wifiap/wlan2.log", "/run/wifiap/wlan3.log", "/var/log/wpa_supplicant-wlan0.log"} {
				out, _ := vm.Run("cat "+f, time.Minute)
				t.Logf("%s:\n%s", f, out)
			}
		}
	})

	// One deadline for the whole story; each line must follow the one before.
	deadline := time.Now().Add(15 * time.Minute)
	at := 0
	see := func(what ...string) {
		t.Helper()
		for _, s := range what {
			if at, err = vm.WaitFor(s, at, time.Until(deadline)); err != nil {
				t.Fatalf("%v\nconsole:\n%s", err, vm.Output())
			}
		}
	}
	see("wifiap: access points up")
	see("Wi-Fi joined iface=wlan0 ssid=cairn-sae security=SAE freq=2437", "DHCP lease iface=wlan0 addr=10.77.3.10")
	t.Logf("joined cairn-sae after %s", vm.Since().Round(time.Second))
	see("DHCP lease renewed iface=wlan0 addr=10.77.3.10")
	see("wifiap: wlan3: access point stopping", "WARNING Wi-Fi connection lost; looking for the networks again iface=wlan0")
	see("Wi-Fi joined iface=wlan0 ssid=cairn-sae security=SAE", "DHCP lease iface=wlan0 addr=10.77.3.10")
	t.Logf("joined cairn-sae again after %s", vm.Since().Round(time.Second))

	// The kernel took the node's country from the regulatory database, as
	// nl80211 tells the access points' side.
	if _, err := vm.WaitFor("wifiap: regulatory domain DE", 0, time.Until(deadline)); err != nil {
		t.Errorf("the kernel did not set the node's regulatory domain: %v", err)
	}
	out := vm.Output()
	for _, want := range []string{
		"DHCP lease iface=eth0 addr=10.0.2.15",
		"cairn: ready slot=a ip=",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the console lacks %q", want)
		}
	}
	if strings.Contains(out, "regulatory.db") {
		t.Error("the kernel could not load the regulatory database")
	}
	// A refused passphrase is said once per attempt: each line names a
	// later attempt (wpa_supplicant counts the failures of any kind).
	refused := regexp.MustCompile(`WARNING Wi-Fi network refused the passphrase; check its psk in network.wifi iface=wlan0 ssid=cairn-wpa2 attempt=(\d+) next_try_in=\d+s`).FindAllStringSubmatch(out, -1)
	if len(refused) == 0 {
		t.Error("the node did not say that cairn-wpa2 refused its passphrase")
	}
	last := 0
	for _, m := range refused {
		n, _ := strconv.Atoi(m[1])
		if n <= last {
			t.Errorf("attempt %s said after attempt %d; each attempt is said once, in order", m[1], last)
		}
		last = n
	}
	t.Logf("cairn-wpa2 refused the passphrase %d times", len(refused))
	// Both default routes, Ethernet's preferred (the lower metric).
	routes, err := vm.Run("cat /proc/net/route", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`(?m)^eth0\s+00000000\s+0202000A\s+\S+\s+\S+\s+\S+\s+1\d\d\s`, `(?m)^wlan0\s+00000000\s+01034D0A\s+\S+\s+\S+\s+\S+\s+6\d\d\s`} {
		if !regexp.MustCompile(want).MatchString(routes) {
			t.Errorf("no default route like %s:\n%s", want, routes)
		}
	}
}

// addToInitramfs writes to out the initramfs in, followed by a second
// archive with one program: the kernel unpacks both, the second over the
// first.
func addToInitramfs(t *testing.T, in, out, name string, program []byte) {
	t.Helper()
	data, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	buf := bytes.NewBuffer(data)
	gz := gzip.NewWriter(buf)
	w := cpio.Newc.Writer(gz)
	if err := w.WriteRecord(cpio.StaticFile(name, string(program), 0o755)); err != nil {
		t.Fatal(err)
	}
	if err := cpio.WriteTrailer(w); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
