package boot

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cairn-os/cairn/internal/atomicfile"
	"golang.org/x/sys/unix"
)

// HealthFile is where cairnd says the cluster side of the node is healthy
// (on servers: the API is ready), for init and the A/B commit to read. It
// names the writing process, so a health file left by a dead cairnd does
// not count.
const HealthFile = "/run/cairn/health/cluster"

// WriteHealth records that this process finds the cluster healthy.
func WriteHealth(what string) error {
	if err := os.MkdirAll(filepath.Dir(HealthFile), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(HealthFile, []byte(fmt.Sprintf("pid=%d %s\n", os.Getpid(), what)), 0o644)
}

// ReadHealth returns what the health file says, if the process that wrote
// it still runs.
func ReadHealth() (string, bool) {
	data, err := os.ReadFile(HealthFile)
	if err != nil {
		return "", false
	}
	line := strings.TrimSpace(string(data))
	pidField, what, _ := strings.Cut(line, " ")
	pid, err := strconv.Atoi(strings.TrimPrefix(pidField, "pid="))
	if err != nil || unix.Kill(pid, 0) != nil {
		return "", false
	}
	return what, true
}
