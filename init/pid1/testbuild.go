//go:build cairntest

package pid1

import (
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// A test build of init (go build -tags cairntest) is what the VM tests
// and benchmarks put into images to fail on purpose or to measure; release
// builds have none of this code.

// faultKind is set at link time (-X) to make init fail: "exit" ends init
// at once (the kernel panics), "hang" stops stage 1 for good once the
// watchdog is armed. The tests put such an init into an update, to see
// that the slot is given up by itself.
var faultKind string

func fault(at string, log *slog.Logger) {
	switch {
	case faultKind == "exit" && at == "start":
		log.Error("fault build: init exits")
		console().Flush(5 * time.Second)
		os.Exit(3)
	case faultKind == "hang" && at == "armed":
		log.Error("fault build: init hangs")
		select {}
	}
}

// testCommand answers the debug console's commands of a test build:
//
//	dd DEVICE BYTES   writes BYTES random bytes to DEVICE from its start,
//	                  none of them in the page cache before or after, 1 MiB
//	                  per write(2), then fsync, as dd does, and says
//	                  how long it took: what make bench holds an update's
//	                  write against.
func testCommand(out io.Writer, f []string) bool {
	if f[0] != "dd" || len(f) != 3 || !strings.HasPrefix(f[1], "/dev/") {
		return false
	}
	n, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil {
		fmt.Fprintln(out, "cairn-debug: error:", err)
		return true
	}
	dev, err := os.OpenFile(f[1], os.O_WRONLY, 0)
	if err != nil {
		fmt.Fprintln(out, "cairn-debug: error:", err)
		return true
	}
	defer dev.Close()
	// As a first dd finds it: none of the range in the page cache (an
	// earlier dd's pages are clean after its fsync, and go).
	if err := unix.Fadvise(int(dev.Fd()), 0, n, unix.FADV_DONTNEED); err != nil {
		fmt.Fprintln(out, "cairn-debug: error:", err)
		return true
	}
	buf := make([]byte, 1<<20)
	rand.Read(buf)
	start := time.Now()
	for left := n; left > 0 && err == nil; left -= int64(len(buf)) {
		_, err = dev.Write(buf[:min(left, int64(len(buf)))])
	}
	if err == nil {
		err = dev.Sync()
	}
	if err != nil {
		fmt.Fprintln(out, "cairn-debug: error:", err)
		return true
	}
	took := time.Since(start)
	unix.Fadvise(int(dev.Fd()), 0, n, unix.FADV_DONTNEED) // nor for what comes next
	fmt.Fprintf(out, "dd: %d bytes in %.3f s\n", n, took.Seconds())
	return true
}
