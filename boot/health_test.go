package boot

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

func TestHealthNeedsALiveWriter(t *testing.T) {
	if _, err := os.Stat(filepath.Dir(HealthFile)); err != nil {
		if os.MkdirAll(filepath.Dir(HealthFile), 0o755) != nil {
			t.Skip("cannot create", filepath.Dir(HealthFile))
		}
	}
	defer os.Remove(HealthFile)
	if err := WriteHealth("apiserver=ready"); err != nil {
		t.Fatal(err)
	}
	if what, ok := ReadHealth(); !ok || what != "apiserver=ready" {
		t.Errorf("own health: %q %v", what, ok)
	}
	// A writer that has exited does not count.
	cmd := exec.Command("true")
	cmd.Run()
	os.WriteFile(HealthFile, []byte("pid="+strconv.Itoa(cmd.Process.Pid)+" apiserver=ready\n"), 0o644)
	if _, ok := ReadHealth(); ok {
		t.Error("a dead writer's health file counted")
	}
}
