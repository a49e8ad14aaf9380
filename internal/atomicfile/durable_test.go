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
	open := regexp.MustCompile(`openat\(AT_FDCWD, "([^"]+)".*\) = (\d+)$`)
	sync := regexp.MustCompile(`f(?:data)?sync\((\d+)\)`)
	var events []string
	fds := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case open.MatchString(line):
			m := open.FindStringSubmatch(line)
			fds[m[2]] = m[1]
		case sync.MatchString(line):
			events = append(events, "sync "+fds[sync.FindStringSubmatch(line)[1]])
		case strings.Contains(line, "rename") && strings.Contains(line, target):
			events = append(events, "rename")
		}
	}
	got := strings.Join(events, "\n")
	tmp := regexp.MustCompile(`sync ` + regexp.QuoteMeta(dir) + `/\.node-password\.\d+\nrename\nsync ` + regexp.QuoteMeta(dir) + `(\n|$)`)
	if !tmp.MatchString(got) {
		t.Errorf("want the temporary file synced, then the rename, then the folder synced; the calls were:\n%s", got)
	}
}
