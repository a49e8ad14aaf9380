package vmtest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-os/cairn/boards"
	"github.com/cairn-os/cairn/internal/nodeapi"
	"github.com/cairn-os/cairn/internal/qemu"
)

// cutPoints are the moments of an update at which TestUpdatePowerCut cuts
// the power: a console line, then a delay of up to most, in half seconds.
var cutPoints = []struct {
	name, after string
	most        time.Duration
}{
	{"while the slot is written", "installing an update", 12 * time.Second},
	{"between the write and the trial's reboot", "update installed; rebooting into it on trial", 2 * time.Second},
	{"during the trial boot", "goodbye", 30 * time.Second},
	{"around the commit", "is on trial: it is committed once", 4 * time.Second},
}

// TestUpdatePowerCut cuts a UEFI node's power (kills QEMU, keeping its
// disk and its EFI variables) at two points of an update, chosen from a
// seed it prints; CAIRN_POWERCUT_SEED=N replays a run. Across runs the
// points spread over four moments, each with up to 25 delays. After each
// cut the data partition passes e2fsck -fn once its journal is replayed,
// as a mount would, a slot boots and ends committed, and at the end an
// update commits.
func TestUpdatePowerCut(t *testing.T) {
	board, err := boards.Get("qemu-arm64")
	if err != nil {
		t.Fatal(err)
	}
	need(t, board.QEMU.Binary, "e2fsck", "sfdisk")
	turn(t, 1, 150)
	seed := time.Now().UnixNano()
	if s := os.Getenv("CAIRN_POWERCUT_SEED"); s != "" {
		if seed, err = strconv.ParseInt(s, 10, 64); err != nil {
			t.Fatalf("CAIRN_POWERCUT_SEED=%s: %v", s, err)
		}
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	type cut struct {
		point int
		delay time.Duration
	}
	var cuts []cut
	var said []string
	for _, p := range rng.Perm(len(cutPoints))[:2] {
		steps := int(cutPoints[p].most / (500 * time.Millisecond))
		c := cut{p, time.Duration(rng.IntN(steps+1)) * 500 * time.Millisecond}
		cuts = append(cuts, c)
		said = append(said, fmt.Sprintf("%s (%s after %q)", cutPoints[p].name, c.delay, cutPoints[p].after))
	}
	t.Logf("power cuts from seed %d (CAIRN_POWERCUT_SEED=%d replays them): %s", seed, seed, strings.Join(said, "; "))

	dir := t.TempDir()
	fleetDir, cairn := newFleet(t, dir)
	config := func(motd string) string {
		return "apiVersion: cairn.dev/v1alpha1\nkind: Node\nhostname: cut\nupdate:\n  trialSeconds: 120\n" +
			"files:\n  - path: /etc/motd\n    content: " + motd + "\ndebug:\n  console: true\n"
	}
	img, _ := buildRelease(t, fleetDir, dir, "v1", config("release one"), 1780000000)
	if err := os.Truncate(img, 1536<<20); err != nil {
		t.Fatal(err)
	}
	// A newer bundle for each cut and one for the update at the end, so
	// that none is older than what the node runs, whatever became of the
	// one before.
	var bundles []string
	for i := range len(cuts) + 1 {
		name := fmt.Sprintf("v%d", i+2)
		_, b := buildRelease(t, fleetDir, dir, name, config("release "+name), 1780000000+int64(i+1)*100000)
		bundles = append(bundles, b)
	}

	port := freePort(t)
	node := fmt.Sprintf("127.0.0.1:%d", port)
	vars := filepath.Join(dir, "vars.fd")
	var vm *qemu.VM
	// start powers the node on and waits until it runs a committed slot
	// and takes updates; it returns the slot.
	start := func(what string) string {
		t.Helper()
		vm, err = qemu.Start(qemu.Options{Board: board, Image: img, Reboot: true, Vars: vars,
			Forward: []string{fmt.Sprintf("%d:%d", port, nodeapi.Port)}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(vm.Kill)
		// Two goroutines of init say these: either may come first.
		waitLine(t, vm, "cairn: ready slot=", 0)
		waitLine(t, vm, "node API listening", 0)
		var st nodeapi.Status
		eventually(t, 4*time.Minute, "a committed slot "+what, func() bool {
			out, err := cairn("status", "--node", node, "--json")
			return err == nil && json.Unmarshal([]byte(out), &st) == nil && st.Committed != "" && !st.Trial
		})
		t.Logf("%s: slot %s runs, committed", what, st.Booted)
		return st.Booted
	}
	start("at first")
	for i, c := range cuts {
		p := cutPoints[c.point]
		from := len(vm.Output())
		// The upgrade's answer comes at the reboot, or never: the cut ends it.
		upgrade := exec.Command(filepath.Join(deviceBinaries(t), "cairn"), "upgrade", bundles[i], "--node", node)
		upgrade.Env = append(os.Environ(), "CAIRN_FLEET="+fleetDir)
		var said syncBuffer
		upgrade.Stdout, upgrade.Stderr = &said, &said
		if err := upgrade.Start(); err != nil {
			t.Fatal(err)
		}
		stop := sync.OnceFunc(func() { upgrade.Process.Kill(); upgrade.Wait() })
		t.Cleanup(stop)
		if _, err := vm.WaitFor(p.after, from, bootTimeout); err != nil {
			t.Fatalf("waiting for %q: %v\ncairn upgrade said: %s\nconsole:\n%s", p.after, err, said.String(), vm.Output())
		}
		time.Sleep(c.delay)
		vm.Kill()
		vm.Wait()
		stop()
		what := fmt.Sprintf("after a power cut %s", p.name)
		// A commit that was made stays; before it, either slot may boot.
		var committed string
		for _, m := range regexp.MustCompile(`slot committed: the node is healthy slot=(\w)`).FindAllStringSubmatch(vm.Output()[from:], -1) {
			committed = m[1]
		}
		dataChecks(t, img, what)
		booted := start(what)
		if committed != "" && booted != committed {
			t.Errorf("%s: slot %s runs, but slot %s was committed before the cut", what, booted, committed)
		}
		if release := fmt.Sprintf("release v%d", i+2); committed != "" && !strings.Contains(mustRun(t, vm, "cat /etc/motd"), release) {
			t.Errorf("%s: the committed slot does not run %s", what, release)
		}
	}
	from := len(vm.Output())
	if out, err := cairn("upgrade", bundles[len(cuts)], "--node", node); err != nil {
		t.Fatalf("an update after the power cuts: %v\n%s", err, out)
	}
	waitLine(t, vm, "slot committed: the node is healthy", from)
}

// dataChecks checks the data partition of a node whose power was cut:
// a copy of it, its journal replayed as a mount would, passes e2fsck -fn.
func dataChecks(t *testing.T, img, what string) {
	t.Helper()
	_, parts := partitions(t, img)
	if len(parts) < 4 {
		t.Fatalf("%s: no data partition: %+v", what, parts)
	}
	data := extract(t, img, parts[3])
	defer os.Remove(data)
	// A replay alone exits 0; anything it had to repair would exit 1.
	if out, err := exec.Command("e2fsck", "-y", "-E", "journal_only", data).CombinedOutput(); err != nil {
		t.Errorf("%s: replaying the data partition's journal: %v\n%s", what, err, out)
	}
	if out, err := exec.Command("e2fsck", "-fn", data).CombinedOutput(); err != nil {
		t.Errorf("%s: e2fsck -fn of the data partition: %v\n%s", what, err, out)
	} else if !regexp.MustCompile(`\d+/\d+ files`).Match(out) {
		t.Errorf("%s: e2fsck -fn said:\n%s", what, out)
	}
}
