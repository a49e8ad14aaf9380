// Package reaper collects the orphans a PID 1 (or a subreaper) inherits
// without taking the exit status of the children its own code waits for.
// Children started through Start are left to their exec.Cmd's Wait; Reap
// waits only for the other dead children, one by one, by their process
// ID, never with wait(-1), which would steal an exit status from Wait.
package reaper

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

var (
	mu   sync.Mutex
	ours = map[int]bool{} // started by Start, waited for by Wait
)

// Start starts cmd as a child that Reap leaves alone; call Wait (or the
// command's own Wait, then Forget) to collect it.
func Start(cmd *exec.Cmd) error {
	mu.Lock()
	defer mu.Unlock()
	if err := cmd.Start(); err != nil {
		return err
	}
	ours[cmd.Process.Pid] = true
	return nil
}

// Wait waits for a command started with Start.
func Wait(cmd *exec.Cmd) error {
	err := cmd.Wait()
	Forget(cmd.Process.Pid)
	return err
}

// Run starts cmd with Start and waits for it.
func Run(cmd *exec.Cmd) error {
	if err := Start(cmd); err != nil {
		return err
	}
	return Wait(cmd)
}

// Forget hands pid back to Reap once it has been waited for.
func Forget(pid int) {
	mu.Lock()
	delete(ours, pid)
	mu.Unlock()
}

// Reap waits for every dead child that Start did not start, and returns
// how many it collected. Call it on SIGCHLD.
func Reap() int {
	mu.Lock()
	defer mu.Unlock()
	n := 0
	for _, pid := range deadChildren(os.Getpid()) {
		if ours[pid] {
			continue
		}
		var ws unix.WaitStatus
		if got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil); got == pid && err == nil {
			n++
		}
	}
	return n
}

// deadChildren lists the zombies whose parent is ppid, from /proc.
func deadChildren(ppid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := bytes.Fields(stat[i+1:])
		if len(f) >= 2 && string(f[0]) == "Z" && string(f[1]) == strconv.Itoa(ppid) {
			out = append(out, pid)
		}
	}
	return out
}
