package service

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-os/cairn/internal/retry"
)

// script is a service running sh -c body in dir, with quick restarts.
func script(dir, body string, p Policy) *Service {
	return &Service{
		Name:    "test",
		Command: func() *exec.Cmd { c := exec.Command("sh", "-c", body); c.Dir = dir; return c },
		Policy:  p,
		LogFile: filepath.Join(dir, "log", "test.log"),
		Backoff: retry.Backoff{Min: time.Millisecond, Max: 5 * time.Millisecond},
		Grace:   200 * time.Millisecond,
	}
}

func runs(t *testing.T, dir string) int {
	t.Helper()
	data, _ := os.ReadFile(filepath.Join(dir, "runs"))
	return strings.Count(string(data), "x")
}

func TestPolicies(t *testing.T) {
	// Each run leaves an x; the third run succeeds.
	body := `echo -n x >> runs; [ $(wc -c < runs) -ge 3 ] && exit 0; echo "run failed"; exit 3`
	t.Run("until success", func(t *testing.T) {
		dir := t.TempDir()
		if err := script(dir, body, UntilSuccess).Run(context.Background()); err != nil || runs(t, dir) != 3 {
			t.Errorf("err %v after %d runs, want none after 3", err, runs(t, dir))
		}
	})
	t.Run("once", func(t *testing.T) {
		dir := t.TempDir()
		err := script(dir, body, Once).Run(context.Background())
		if err == nil || runs(t, dir) != 1 {
			t.Errorf("err %v after %d runs, want exit code 3 after 1", err, runs(t, dir))
		}
		log, _ := os.ReadFile(filepath.Join(dir, "log", "test.log"))
		if string(log) != "run failed\n" {
			t.Errorf("log %q", log)
		}
	})
	t.Run("forever", func(t *testing.T) {
		dir := t.TempDir()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- script(dir, `echo -n x >> runs; exit 0`, Forever).Run(ctx) }()
		for runs(t, dir) < 5 {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("stopped: %v", err)
		}
	})
}

// TestStopAsksFirst cancels a running service: the program gets SIGTERM
// and its last words are kept.
func TestStopAsksFirst(t *testing.T) {
	dir := t.TempDir()
	s := script(dir, `trap 'echo got TERM; exit 0' TERM; echo up; while :; do sleep 0.05; done`, Forever)
	var mu sync.Mutex
	var lines []string
	s.Line = func(l string) { mu.Lock(); lines = append(lines, l); mu.Unlock() }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	for {
		mu.Lock()
		n := len(lines)
		mu.Unlock()
		if n > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if got := strings.Join(lines, ","); got != "up,got TERM" {
		t.Errorf("lines %q", got)
	}
}

// TestOrphanHoldingTheOutput runs a program that leaves a child behind
// holding its output: the run still ends, after the grace period.
func TestOrphanHoldingTheOutput(t *testing.T) {
	dir := t.TempDir()
	s := script(dir, `sleep 30 & echo started child; exit 4`, Once)
	done := make(chan error)
	go func() { done <- s.Run(context.Background()) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "exit status 4") {
			t.Errorf("err %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the run waited for the orphan")
	}
}

// TestOutputLines checks stamping, long lines and a last line without a
// newline.
func TestOutputLines(t *testing.T) {
	dir := t.TempDir()
	long := strings.Repeat("y", 100<<10)
	os.WriteFile(filepath.Join(dir, "long"), []byte(long+"\n"), 0o644)
	s := script(dir, `echo first; cat long; printf last`, Once)
	s.Stamp = true
	var lines []string
	s.Line = func(l string) { lines = append(lines, l) }
	if err := s.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(lines) != 4 || lines[0] != "first" || lines[1]+lines[2] != long || lines[3] != "last" {
		t.Errorf("%d lines: first %q, last %q", len(lines), lines[0], lines[len(lines)-1])
	}
	log, _ := os.ReadFile(s.LogFile)
	first, _, _ := strings.Cut(string(log), "\n")
	if stamp, text, _ := strings.Cut(first, " "); text != "first" || len(stamp) != len("2006-01-02T15:04:05Z") {
		t.Errorf("first log line %q", first)
	}
}

func TestRotatingKeepsOneOldFile(t *testing.T) {
	dir := t.TempDir()
	r := &Rotating{Path: filepath.Join(dir, "x.log"), Max: 100}
	for i := range 5 {
		if _, err := r.Write([]byte(strings.Repeat(string(rune('a'+i)), 60))); err != nil {
			t.Fatal(err)
		}
	}
	r.Close()
	cur, _ := os.ReadFile(r.Path)
	old, _ := os.ReadFile(r.Path + ".1")
	files, _ := os.ReadDir(dir)
	if string(cur) != strings.Repeat("e", 60) || string(old) != strings.Repeat("d", 60) || len(files) != 2 {
		t.Errorf("current %q, old %q, %d files", cur, old, len(files))
	}
}

// TestStopKillsTheGroup stops a program that ignores SIGTERM and leaves a
// child in its process group: after the grace period both are gone.
func TestStopKillsTheGroup(t *testing.T) {
	dir := t.TempDir()
	s := script(dir, `trap '' TERM; sleep 60 & echo $! > child; echo up; wait`, Forever)
	s.Command = func(cmd func() *exec.Cmd) func() *exec.Cmd {
		return func() *exec.Cmd { c := cmd(); c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}; return c }
	}(s.Command)
	up := make(chan struct{})
	var once sync.Once
	s.Line = func(string) { once.Do(func() { close(up) }) }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	<-up
	data, _ := os.ReadFile(filepath.Join(dir, "child"))
	child, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	cancel()
	<-done
	for deadline := time.Now().Add(5 * time.Second); syscall.Kill(child, 0) == nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the child %d outlived its stopped parent", child)
		}
	}
}
