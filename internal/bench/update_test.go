package bench

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/cairn-os/cairn/boards"
	"github.com/cairn-os/cairn/boot/bundle"
	"github.com/cairn-os/cairn/boot/family"
	"github.com/cairn-os/cairn/internal/bundletest"
	"github.com/cairn-os/cairn/internal/fleet"
	"github.com/cairn-os/cairn/internal/nodeapi"
	"github.com/cairn-os/cairn/internal/qemu"
)

// BenchmarkUpdate prints what an over-the-air update costs a qemu-arm64
// node under emulation: the bundle's size against the image's; the time
// from `cairn upgrade` to the slot committed, split into the stream (of
// it the time the node waited for the bundle: transfer and hashing), the
// sync and read-back, the reboot and the wait for health; init's peak
// memory when the slot is written; and the write's throughput against a
// plain dd of as many bytes to the same virtual disk (a test build of init
// does that dd, from the debug console, before and after the update).
// The bundle as built, three times (its write takes a second or two, less
// than the host's disk varies from one run to the next: their median),
// then one whose root is padded with random bytes to 200 MiB, to see that
// the memory does not grow with the bundle.
func BenchmarkUpdate(b *testing.B) {
	dir := b.TempDir()
	fleetDir := filepath.Join(dir, "fleet")
	cairn := func(env []string, args ...string) string {
		b.Helper()
		cmd := exec.Command(cairnBin(b), args...)
		cmd.Env = append(append(os.Environ(), "CAIRN_FLEET="+fleetDir), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("cairn %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	cairn(nil, "keys", "generate")
	bins := filepath.Join(dir, "bin")
	cmd := exec.Command("go", "build", "-trimpath", "-gcflags=all=-dwarf=false", "-tags", "cairntest", "-ldflags", "-s -w",
		"-o", filepath.Join(bins, "linux-arm64", "init"), "../../cmd/init")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("a test build of init: %v\n%s", err, out)
	}
	cfg := filepath.Join(dir, "node.yaml")
	os.WriteFile(cfg, []byte("apiVersion: cairn.dev/v1alpha1\nkind: Node\nhostname: bench\ndebug:\n  console: true\n"), 0o644)
	release := func(name string, epoch int64) (img, bndl string) {
		img, bndl = filepath.Join(dir, name+".img"), filepath.Join(dir, name+".cairnb")
		cairn([]string{fmt.Sprint("SOURCE_DATE_EPOCH=", epoch)}, "build", "--board", "qemu-arm64", "--config", cfg,
			"--output", img, "--bundle", bndl, "--bin-dir", bins)
		return img, bndl
	}
	img, _ := release("v1", 1780000000)
	v2img, v2 := release("v2", 1780100000)
	f, err := fleet.Load(fleetDir)
	if err != nil {
		b.Fatal(err)
	}
	keys := []ed25519.PublicKey{f.SignKey.Public().(ed25519.PublicKey)}
	same := func(_ string, data []byte) []byte { return data }
	// The bundle as built, again twice with later build numbers.
	small := []string{v2}
	for i := range 2 {
		again := filepath.Join(dir, fmt.Sprintf("v2-%d.cairnb", i+2))
		bundletest.Rewrite(b, v2, again, keys, f.SignKey, func(m *bundle.Manifest) { m.Build += int64(i + 1) }, same)
		small = append(small, again)
	}
	v3 := filepath.Join(dir, "v3.cairnb")
	bundletest.Rewrite(b, v2, v3, keys, f.SignKey,
		func(m *bundle.Manifest) { m.Build = 1780200000 },
		func(name string, data []byte) []byte {
			if name != family.Root || len(data) >= 200<<20 {
				return data
			}
			pad := make([]byte, 200<<20-len(data))
			rand.Read(pad)
			return append(data, pad...)
		})
	for _, p := range []string{v2img, v2, v3} {
		st, _ := os.Stat(p)
		fmt.Printf("%-10s %6.1f MiB\n", filepath.Base(p), float64(st.Size())/(1<<20))
	}
	if err := os.Truncate(img, 2<<30); err != nil {
		b.Fatal(err)
	}

	board, _ := boards.Get("qemu-arm64")
	port := 20000 + os.Getpid()%20000
	node := fmt.Sprintf("127.0.0.1:%d", port)
	vm, err := qemu.Start(qemu.Options{Board: board, Image: img, Reboot: true, Forward: []string{fmt.Sprintf("%d:%d", port, nodeapi.Port)}})
	if err != nil {
		b.Fatal(err)
	}
	defer vm.Kill()
	wait := func(line string, from int) int {
		b.Helper()
		at, err := vm.WaitFor(line, from, 10*time.Minute)
		if err != nil {
			b.Fatalf("%v\nconsole:\n%s", err, vm.Output())
		}
		return at
	}
	at := wait("node API listening", 0)
	figures := regexp.MustCompile(`slot written slot=\S+ bytes=(\d+) streamed=(\S+) waitingForBundle=(\S+) sync=(\S+) readBack=(\S+) bootFiles=(\S+) bootFileBytes=(\d+) bootOpen=(\S+) bootCommit=(\S+) writeMiBps=(\S+) initPeakRSSMiB=(\d+)\r?\n`)
	ddLine := regexp.MustCompile(`dd: (\d+) bytes in (\S+) s`)
	// Of the bundle as built: each install's rate and dd's runs.
	var smallRates, smallDD []float64
	for i, bndl := range append(small, v3) {
		target, left := "/dev/vda3", "/dev/vda2" // the slot not running: b, then a, ...
		if i%2 == 1 {
			target, left = left, target
		}
		st, _ := os.Stat(bndl)
		// dd, of as many bytes as the slot's files, to the slot partition
		// the update then overwrites; three times before the update and
		// three after it, since the host's disk varies (QEMU writes through
		// its page cache): the median.
		var ddRates []float64
		var ddBytes float64
		dd := func(dev string) {
			b.Helper()
			for range 3 {
				out, err := vm.Run(fmt.Sprintf("dd %s %d", dev, slotBytes(b, bndl, f)), 10*time.Minute)
				m := ddLine.FindStringSubmatch(out)
				if err != nil || m == nil {
					b.Fatalf("dd: %v\n%s", err, out)
				}
				var secs float64
				fmt.Sscan(m[1], &ddBytes)
				fmt.Sscan(m[2], &secs)
				ddRates = append(ddRates, ddBytes/(1<<20)/secs)
			}
		}
		dd(target)
		start := time.Now()
		cairn(nil, "upgrade", bndl, "--node", node)
		upgrade := time.Since(start)
		from := at
		at = wait("slot written", at)
		var w []string
		for end := time.Now().Add(time.Minute); w == nil; time.Sleep(100 * time.Millisecond) {
			if w = figures.FindStringSubmatch(vm.Output()[from:]); w == nil && time.Now().After(end) {
				b.Fatalf("no figures in the slot written line:\n%s", vm.Output()[from:])
			}
		}
		at = wait("goodbye", at)
		down, downAt := time.Now(), at
		at = wait("cairn: ready slot=", at)
		ready := time.Now()
		wait("slot committed", downAt) // the commit may come before the ready line
		committed := time.Now()
		at = max(at, wait("node API listening", downAt)) // it and the ready line come in either order
		// The slot the node left, not the one it now runs.
		dd(left)
		slices.Sort(ddRates)
		fmt.Printf("update %s (%.1f MiB): cairn upgrade to committed %.0f s: the upgrade command %.1f s (the node streamed %s bytes in %s, waiting for the bundle %s of it; sync %s; read-back %s), then to the reboot %.1f s, the reboot to the ready line %.1f s, the commit %.1f s after it\n",
			filepath.Base(bndl), float64(st.Size())/(1<<20), committed.Sub(start).Seconds(), upgrade.Seconds(), w[1], w[2], w[3], w[4], w[5],
			down.Sub(start.Add(upgrade)).Seconds(), ready.Sub(down).Seconds(), committed.Sub(ready).Seconds())
		// The root goes raw into the slot partition, as dd writes; the
		// kernel and initramfs are files on the boot partition.
		var bytes, fatBytes float64
		fmt.Sscan(w[1], &bytes)
		fmt.Sscan(w[7], &fatBytes)
		streamed, waiting, sync, fat := seconds(b, w[2]), seconds(b, w[3]), seconds(b, w[4]), seconds(b, w[6])
		all := bytes / (1 << 20) / (streamed - waiting + sync)
		raw := (bytes - fatBytes) / (1 << 20) / (streamed - waiting - fat + sync)
		median := (ddRates[2] + ddRates[3]) / 2
		fmt.Printf("  written at %.1f MiB/s, %.0f%% of dd's %.1f MiB/s (the median of six, %.1f to %.1f; %.0f MiB to %s and the slot it left): the root, raw into the slot partition, %.1f MiB/s; the kernel and initramfs, files in the boot partition's file system, %.1f MiB/s (opening it %s, the commit %s); init's peak RSS %s MiB\n",
			all, 100*all/median, median, ddRates[0], ddRates[5], ddBytes/(1<<20), target, raw, fatBytes/(1<<20)/fat, w[8], w[9], w[11])
		if bndl != v3 {
			smallRates, smallDD = append(smallRates, all), append(smallDD, ddRates...)
		}
	}
	slices.Sort(smallRates)
	slices.Sort(smallDD)
	ddMedian := (smallDD[len(smallDD)/2-1] + smallDD[len(smallDD)/2]) / 2
	fmt.Printf("the bundle as built, %d installs: written at %.1f to %.1f MiB/s, the median %.1f MiB/s, %.0f%% of the median of dd's %d runs beside them, %.1f MiB/s\n",
		len(smallRates), smallRates[0], smallRates[len(smallRates)-1], smallRates[len(smallRates)/2], 100*smallRates[len(smallRates)/2]/ddMedian, len(smallDD), ddMedian)
}

// slotBytes is the size of the slot's files a bundle holds.
func slotBytes(b *testing.B, bndl string, f *fleet.Fleet) int64 {
	in, err := os.Open(bndl)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	r, err := bundle.NewReader(in, []ed25519.PublicKey{f.SignKey.Public().(ed25519.PublicKey)})
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	for _, file := range r.Manifest.Files {
		n += file.Size
	}
	return n
}

func seconds(b *testing.B, s string) float64 {
	d, err := time.ParseDuration(s)
	if err != nil {
		b.Fatal(err)
	}
	return d.Seconds()
}
