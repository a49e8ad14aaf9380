package vmtest

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cairn-os/cairn/internal/flaky"

	"github.com/cairn-os/cairn/boards"
	"github.com/cairn-os/cairn/boot/bundle"
	"github.com/cairn-os/cairn/internal/bundletest"
	"github.com/cairn-os/cairn/internal/fleet"
	"github.com/cairn-os/cairn/internal/nodeapi"
	"github.com/cairn-os/cairn/internal/qemu"
)

// TestUpdate updates a qemu-arm64 node over the air, one boot after
// another on one disk: bundles the node must refuse (another key, a cut
// stream, a bit flipped, another board, an older build) change nothing
// that boots; a good one is
// installed into the other slot, boots on trial and is committed; a
// rollback goes back the same way; a slot whose kernel panics falls
// back to the committed one with no help from the new system; and one that
// never becomes healthy is given up when its trial time is over. A node also
// pulls a bundle from the channel its config names, resuming a download
// that breaks off.
func TestUpdate(t *testing.T) {
	board, err := boards.Get("qemu-arm64")
	if err != nil {
		t.Fatal(err)
	}
	need(t, board.QEMU.Binary)
	turn(t, 1, 440)
	dir := t.TempDir()
	fleetDir, cairn := newFleet(t, dir)
	f, err := fleet.Load(fleetDir)
	if err != nil {
		t.Fatal(err)
	}
	channel := serveChannel(t, filepath.Join(dir, "www"))
	config := func(motd string) string {
		return "apiVersion: cairn.dev/v1alpha1\nkind: Node\nhostname: upd\nupdate:\n  trialSeconds: 120\n  pollSeconds: 30\n" +
			"  url: " + channel + "\nfiles:\n  - path: /etc/motd\n    content: " + motd + "\ndebug:\n  console: true\n"
	}
	v1, v1b := buildRelease(t, fleetDir, dir, "v1", config("release one"), 1780000000)
	_, v2b := buildRelease(t, fleetDir, dir, "v2", config("release two"), 1780100000)
	if err := os.Truncate(v1, 1536<<20); err != nil {
		t.Fatal(err)
	}

	port := freePort(t)
	node := fmt.Sprintf("127.0.0.1:%d", port)
	vm, err := qemu.Start(qemu.Options{Board: board, Image: v1, Reboot: true, Forward: []string{fmt.Sprintf("%d:%d", port, nodeapi.Port)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(vm.Kill)
	at := waitLine(t, vm, "cairn: ready slot=a", 0)
	waitLine(t, vm, "node API listening", 0)
	at = len(vm.Output())
	status := func() nodeapi.Status {
		t.Helper()
		out, err := cairn("status", "--node", node, "--json")
		if err != nil {
			t.Fatalf("cairn status: %v\n%s", err, out)
		}
		var s nodeapi.Status
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			t.Fatalf("cairn status --json: %v\n%s", err, out)
		}
		return s
	}
	st := status()
	if st.Booted != "a" || st.Committed != "a" || st.Trial || st.Slots["b"].Build != 1780000000 {
		t.Fatalf("fresh node: %+v", st)
	}

	// Refused before a byte is written: another key, an older build.
	other := resign(t, f, v2b, dir, "other.cairnb", nil)
	if out, err := cairn("upgrade", other, "--node", node); err == nil || !strings.Contains(err.Error(), "not signed by a trusted key") {
		t.Errorf("a bundle signed by another key: %v\n%s", err, out)
	}
	// A stream cut short writes the other slot but never arms it.
	cut := filepath.Join(dir, "cut.cairnb")
	whole, _ := os.ReadFile(v2b)
	os.WriteFile(cut, whole[:len(whole)*2/3], 0o644)
	if out, err := cairn("upgrade", cut, "--node", node); err == nil || !strings.Contains(err.Error(), "the stream ended") {
		t.Errorf("a cut bundle: %v\n%s", err, out)
	}
	st = status()
	if st.Committed != "a" || st.Last == nil || st.Last.State != "failed" || st.Slots["b"].Build != 0 {
		t.Errorf("after a cut bundle: %+v last %+v", st, st.Last)
	}
	// A bit flipped in the root on the way: its hash no longer matches.
	flipped := filepath.Join(dir, "flipped.cairnb")
	bits := bytes.Clone(whole)
	bits[len(bits)-8192] ^= 0x10 // the root is the last file
	os.WriteFile(flipped, bits, 0o644)
	if out, err := cairn("upgrade", flipped, "--node", node); err == nil || !strings.Contains(err.Error(), "root.squashfs has sha256") {
		t.Errorf("a bundle with a bit flipped: %v\n%s", err, out)
	}
	// Another board's, signed by the fleet: refused before a byte is written.
	otherBoard := filepath.Join(dir, "rpi4.cairnb")
	bundletest.Rewrite(t, v2b, otherBoard, []ed25519.PublicKey{f.SignKey.Public().(ed25519.PublicKey)}, f.SignKey,
		func(m *bundle.Manifest) { m.Board = "rpi4" }, func(_ string, data []byte) []byte { return data })
	if out, err := cairn("upgrade", otherBoard, "--node", node); err == nil || !strings.Contains(err.Error(), "the bundle is for board rpi4 (arm64), this node is qemu-arm64") {
		t.Errorf("another board's bundle: %v\n%s", err, out)
	}
	if st = status(); st.Booted != "a" || st.Committed != "a" || st.Trial || st.Last == nil || !strings.Contains(st.Last.Reason, "root.squashfs has sha256") {
		t.Errorf("after a flipped bit and another board's bundle: %+v last %+v", st, st.Last)
	}

	// Pulled: the channel on the host offers v2; the node fetches it (the
	// download breaks off half-way once and resumes), installs it into b,
	// boots it on trial and commits it.
	www := filepath.Join(dir, "www")
	os.Link(v2b, filepath.Join(www, "v2.cairnb"))
	if out, err := cairn("publish", filepath.Join(www, "v2.cairnb"), "--channel", filepath.Join(www, "stable.json")); err != nil {
		t.Fatalf("cairn publish: %v\n%s", err, out)
	}
	at = waitLine(t, vm, "the update channel offers a newer system", at)
	waitLine(t, vm, "download broke off; resuming", at)
	// The gate starts before the ready line: the commit may come first.
	waitLine(t, vm, "cairn: ready slot=b", at)
	at = waitLine(t, vm, "slot committed: the node is healthy slot=b", at)
	if got := mustRun(t, vm, "cat /etc/motd"); !strings.Contains(got, "release two") {
		t.Errorf("slot b runs %q, want release two", got)
	}
	st = status()
	if st.Booted != "b" || st.Committed != "b" || st.Trial || st.Slots["b"].Build != 1780100000 || st.Last.State != "committed" {
		t.Errorf("after the update: %+v last %+v", st, st.Last)
	}
	if out, err := cairn("upgrade", v1b, "--node", node); err == nil || !strings.Contains(err.Error(), "older than the running build") {
		t.Errorf("an older bundle: %v\n%s", err, out)
	}

	// Back to a, the same way; the channel's v2 is then held, not pulled again.
	if out, err := cairn("rollback", "--node", node); err != nil {
		t.Fatalf("cairn rollback: %v\n%s", err, out)
	}
	waitLine(t, vm, "cairn: ready slot=a", at)
	at = waitLine(t, vm, "slot committed: the node is healthy slot=a", at)

	// Pushed: v2 again, into b, on trial, committed.
	if out, err := cairn("upgrade", v2b, "--node", node); err != nil {
		t.Fatalf("cairn upgrade: %v\n%s", err, out)
	}
	waitLine(t, vm, "cairn: ready slot=b", at)
	at = waitLine(t, vm, "slot committed: the node is healthy slot=b", at)
	if strings.Count(vm.Output(), "the update channel offers a newer system") != 1 {
		t.Error("the node pulled the build a rollback left")
	}

	// A slot whose kernel cannot start init: the loader's one-shot trial
	// is spent, and slot b boots again by itself.
	broken := resign(t, f, v2b, dir, "broken.cairnb", f.SignKey)
	if out, err := cairn("upgrade", broken, "--node", node); err != nil {
		t.Fatalf("cairn upgrade (broken): %v\n%s", err, out)
	}
	at = waitLine(t, vm, "Kernel panic", at)
	waitLine(t, vm, "the last update was rolled back", at)
	waitLine(t, vm, "cairn: ready slot=b", at)
	st = status()
	if st.Booted != "b" || st.Committed != "b" || st.Last.State != "rolled-back" || !strings.Contains(st.Last.Reason, "slot a did not come up") {
		t.Errorf("after a broken update: %+v last %+v", st, st.Last)
	}
	out, err := cairn("status", "--node", node)
	if err != nil || !strings.Contains(out, "last update: rolled-back") {
		t.Errorf("cairn status: %v\n%s\nconsole:\n%s", err, out, vm.Output())
	}
	t.Logf("cairn status:\n%s", out)

	// Slots whose init fails: one exits at once (the kernel panics, and
	// the loader's one-shot trial is spent), one hangs in stage 1 once it
	// has armed the watchdog (init stops feeding it when the phase runs
	// past its time limit, and the watchdog resets the board). Each time
	// the committed slot boots again by itself and says so.
	for _, kind := range []string{"exit", "hang"} {
		_, fb := buildRelease(t, fleetDir, dir, "fault-"+kind, config("release "+kind), 1780150000, faultInit(t, dir, kind))
		if out, err := cairn("upgrade", fb, "--node", node); err != nil {
			t.Fatalf("cairn upgrade (init that %ss): %v\n%s", kind, err, out)
		}
		at = waitLine(t, vm, "fault build: init "+kind+"s", at)
		if kind == "exit" {
			at = waitLine(t, vm, "Attempted to kill init", at)
		} else {
			at = waitLine(t, vm, "no longer feeding the watchdog", at)
		}
		waitLine(t, vm, "the last update was rolled back", at)
		at = waitLine(t, vm, "cairn: ready slot=b", at)
		st = status()
		if st.Booted != "b" || st.Committed != "b" || st.Last.State != "rolled-back" || !strings.Contains(st.Last.Reason, "slot a did not come up") {
			t.Errorf("after an update whose init %ss: %+v last %+v", kind, st, st.Last)
		}
	}

	// A slot that boots but never becomes healthy (its config names a
	// network interface the node lacks): the gate gives it up when its
	// trial time is over, and the node boots the committed slot again,
	// saying why.
	unhealthy := strings.Replace(config("release three"), "trialSeconds: 120", "trialSeconds: 30", 1) +
		"network:\n  interfaces:\n    - name: eth9\n      addresses: [10.9.9.9/24]\n"
	_, v3b := buildRelease(t, fleetDir, dir, "v3", unhealthy, 1780200000)
	if out, err := cairn("upgrade", v3b, "--node", node); err != nil {
		t.Fatalf("cairn upgrade (unhealthy): %v\n%s", err, out)
	}
	at = waitLine(t, vm, "slot a is on trial", at)
	at = waitLine(t, vm, "giving up the slot on trial; rebooting into the committed slot", at)
	waitLine(t, vm, "cairn: ready slot=b", at)
	st = status()
	if st.Booted != "b" || st.Committed != "b" || st.Last.State != "rolled-back" ||
		!strings.Contains(st.Last.Reason, "not healthy within 30s") || !strings.Contains(st.Last.Reason, "the network is not up") {
		t.Errorf("after an update that never became healthy: %+v last %+v", st, st.Last)
	}
}

// newFleet makes a fleet's keys in dir and returns their folder and a
// runner of bin/cairn with that fleet. The CLI runs as its own program,
// with the fleet in its environment: t.Setenv would keep a test from
// running beside the others.
func newFleet(t *testing.T, dir string) (string, func(args ...string) (string, error)) {
	t.Helper()
	fleetDir := filepath.Join(dir, "fleet")
	cairn := func(args ...string) (string, error) {
		return cairnProgram(t, []string{"CAIRN_FLEET=" + fleetDir}, args...)
	}
	if out, err := cairn("keys", "generate"); err != nil {
		t.Fatalf("cairn keys generate: %v\n%s", err, out)
	}
	return fleetDir, cairn
}

// buildRelease builds an image and its bundle for a fleet at a build time,
// from the device binaries or those in binDir.
func buildRelease(t *testing.T, fleetDir, dir, name, config string, epoch int64, binDir ...string) (img, bndl string) {
	t.Helper()
	bins := append(binDir, deviceBinaries(t))[0]
	cfg := filepath.Join(dir, name+".yaml")
	os.WriteFile(cfg, []byte(config), 0o644)
	img, bndl = filepath.Join(dir, name+".img"), filepath.Join(dir, name+".cairnb")
	out, err := cairnProgram(t, []string{"CAIRN_FLEET=" + fleetDir, fmt.Sprint("SOURCE_DATE_EPOCH=", epoch)}, "build", "--board", "qemu-arm64", "--config", cfg, "--output", img, "--bundle", bndl, "--bin-dir", bins)
	if err != nil {
		t.Fatalf("cairn build %s: %v\n%s", name, err, out)
	}
	return img, bndl
}

// faultInit builds init for arm64 as the Makefile does, but as a test
// build (init/pid1/testbuild.go) that fails the given way, into a
// folder laid out as --bin-dir wants, and returns the folder.
func faultInit(t *testing.T, dir, kind string) string {
	t.Helper()
	bins := filepath.Join(dir, "fault-"+kind)
	cmd := exec.Command("go", "build", "-trimpath", "-gcflags=all=-dwarf=false", "-tags", "cairntest",
		"-ldflags", "-s -w -X github.com/cairn-os/cairn/init/pid1.faultKind="+kind,
		"-o", filepath.Join(bins, "linux-arm64", "init"), "../../cmd/init")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building a fault init: %v\n%s", err, out)
	}
	return bins
}

// resign writes a copy of a bundle signed with key (a new one when nil),
// with its initramfs replaced by bytes no kernel can unpack when key is
// the fleet's.
func resign(t *testing.T, f *fleet.Fleet, src, dir, name string, key ed25519.PrivateKey) string {
	t.Helper()
	broken := key != nil
	if key == nil {
		_, key, _ = ed25519.GenerateKey(nil)
	}
	out := filepath.Join(dir, name)
	// Read with the fleet's key: the source is the fleet's bundle.
	bundletest.Rewrite(t, src, out, []ed25519.PublicKey{f.SignKey.Public().(ed25519.PublicKey)}, key, nil, func(name string, data []byte) []byte {
		if broken && name == "initrd.img" {
			return bytes.Repeat([]byte("not an initramfs "), 1000)
		}
		return data
	})
	return out
}

func waitLine(t *testing.T, vm *qemu.VM, line string, from int) int {
	t.Helper()
	at, err := vm.WaitFor(line, from, bootTimeout)
	if err != nil {
		t.Fatalf("waiting for %q: %v\nconsole:\n%s", line, err, vm.Output())
	}
	return at
}

// serveChannel serves dir over HTTP for the VM (at the host's address on
// QEMU's user network) and returns the channel's URL there. The first
// download of a bundle breaks off half-way.
func serveChannel(t *testing.T, dir string) string {
	t.Helper()
	os.MkdirAll(dir, 0o755)
	files := http.FileServer(http.Dir(dir))
	var cut atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, ".cairnb") && !cut.Swap(true) {
			w = flaky.Cut(w, 8<<20)
		}
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	return "http://10.0.2.2:" + port + "/stable.json"
}
