package atomicfile

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDurableOrder runs Write under strace and reads the system calls: the
// data reaches the disk (fsync of the temporary file) before the rename
// makes it the file, and the rename reaches the disk (fsync of the folder)
// before Write returns. That order is what makes a power cut leave either
// the old file or the new one, never an empty one.
func TestDurableOrder(t *testing.T) {
	if os.Getenv("ATOMICFILE_HELPER") != "" {
		if err := Write(os.Getenv("ATOMICFILE_HELPER"), []byte("node password\n"), 0o600); err != nil {
			os.Exit(3)
		}
		os.Exit(0)
	}
	if _, err := exec.LookPath("strace"); err != nil {
		t.Skip("strace is missing: run make deps")
	}
	dir := t.TempDir()
	target, trace := filepath.Join(dir, "node-password"), filepath.Join(t.TempDir(), "trace")
	cmd := exec.Command("strace", "-f", "-qq", "-o", trace, "-e", "trace=openat,fsync,fdatasync,rename,renameat,renameat2,close",
		os.Args[0], "-test.run", "^TestDurableOrder$")
	cmd.Env = append(os.Environ(), "ATOMICFILE_HELPER="+target)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("strace: %v\n%s", err, out)
	}
	data, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	// Follow the temporary file's and the folder's descriptors by number.
	// With -f, a call another thread interrupts is split over two lines,
	// "<unfinished ...>" and "<... NAME resumed>", each after the pid.
	line := regexp.MustCompile(`^(\d+)\s+(.*)$`)
	open := regexp.MustCompile(`^openat\(AT_FDCWD, "([^"]+)"`)
	result := regexp.MustCompile(`= (\d+)$`)
	sync := regexp.MustCompile(`^f(?:data)?sync\((\d+)`)
	var events []string
	fds, pending := map[string]string{}, map[string]string{}
	for _, l := range strings.Split(string(data), "\n") {
		m := line.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		pid, call := m[1], m[2]
		switch {
		case open.MatchString(call):
			path := open.FindStringSubmatch(call)[1]
			if r := result.FindStringSubmatch(call); r != nil {
				fds[r[1]] = path
			} else {
				pending[pid] = path
			}
		case strings.HasPrefix(call, "<... openat resumed>"):
			if r := result.FindStringSubmatch(call); r != nil {
				fds[r[1]] = pending[pid]
			}
		case sync.MatchString(call):
			events = append(events, "sync "+fds[sync.FindStringSubmatch(call)[1]])
		case strings.Contains(call, "rename") && strings.Contains(call, target):
			events = append(events, "rename")
		}
	}
	got := strings.Join(events, "\n")
	tmp := regexp.MustCompile(`sync ` + regexp.QuoteMeta(dir) + `/\.node-password\.\d+\nrename\nsync ` + regexp.QuoteMeta(dir) + `(\n|$)`)
	if !tmp.MatchString(got) {
		t.Errorf("want the temporary file synced, then the rename, then the folder synced; the calls were:\n%s", got)
	}
}
