package reaper

import (
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"
)

// TestReapLeavesWaitersTheirStatus has a dead child of its own code and a
// dead stranger (started without Start, like an orphan PID 1 inherits):
// Reap collects only the stranger, and the command's Wait still gets its
// exit status.
func TestReapLeavesWaitersTheirStatus(t *testing.T) {
	ours := exec.Command("sh", "-c", "exit 7")
	if err := Start(ours); err != nil {
		t.Fatal(err)
	}
	stranger, err := syscall.ForkExec("/bin/sh", []string{"sh", "-c", "exit 0"}, &syscall.ProcAttr{})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		dead := deadChildren(syscall.Getpid())
		if slices.Contains(dead, ours.Process.Pid) && slices.Contains(dead, stranger) {
			break
		}
	}
	if n := Reap(); n != 1 {
		t.Errorf("reaped %d children, want the stranger alone", n)
	}
	if slices.Contains(deadChildren(syscall.Getpid()), stranger) {
		t.Error("the stranger is still a zombie")
	}
	if err := Wait(ours); err == nil || ours.ProcessState.ExitCode() != 7 {
		t.Errorf("Wait: %v, exit code %d; want 7", err, ours.ProcessState.ExitCode())
	}
}
