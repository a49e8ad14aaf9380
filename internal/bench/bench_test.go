// Package bench prints the figures the README quotes: warm build time and
// peak memory per board, image and partition fill, and boot to ready under
// QEMU. It asserts nothing about timings; run it with `make bench`.
package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-os/cairn/boards"
	"github.com/cairn-os/cairn/internal/qemu"
)

// cairnBin is the CLI make built.
func cairnBin(b *testing.B) string {
	p, _ := filepath.Abs("../../bin/cairn")
	if _, err := os.Stat(p); err != nil {
		b.Fatalf("%s is missing: run `make build` (make bench does)", p)
	}
	return p
}

func build(b *testing.B, board, out string) (time.Duration, int64, string) {
	cmd := exec.Command(cairnBin(b), "build", "--board", board, "--output", out, "--bin-dir", filepath.Dir(cairnBin(b)))
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=1780000000")
	start := time.Now()
	outb, err := cmd.CombinedOutput()
	took := time.Since(start)
	if err != nil {
		b.Fatalf("build %s: %v\n%s", board, err, outb)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	lines := strings.Split(strings.TrimSpace(string(outb)), "\n")
	return took, ru.Maxrss << 10, lines[len(lines)-1]
}

func BenchmarkWarmBuild(b *testing.B) {
	dir := b.TempDir()
	for _, board := range []string{"qemu-arm64", "rpi4"} {
		out := filepath.Join(dir, board+".img")
		build(b, board, out) // warm the cache
		took, rss, summary := build(b, board, out)
		fmt.Printf("warm build %-10s %6.1f s  peak RSS %4d MiB\n  %s\n", board, took.Seconds(), rss>>20, summary)
	}
}

func BenchmarkBootToReady(b *testing.B) {
	dir := b.TempDir()
	img := filepath.Join(dir, "qemu-arm64.img")
	build(b, "qemu-arm64", img)
	if err := os.Truncate(img, 2<<30); err != nil {
		b.Fatal(err)
	}
	board, _ := boards.Get("qemu-arm64")
	for _, what := range []string{"first boot (formats data)", "second boot"} {
		vm, err := qemu.Start(qemu.Options{Board: board, Image: img})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := vm.WaitFor("cairn: ready", 0, 10*time.Minute); err != nil {
			vm.Kill()
			b.Fatal(err)
		}
		fmt.Printf("boot to ready, qemu-arm64 %s, accel %s: %.1f s\n", what, qemu.Accel(board.QEMU.Binary), vm.Since().Seconds())
		vm.Kill()

	}
}
