package pid1

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Service is a supervised process: restarted with back-off when it exits,
// its output copied to the console and to a log file on the data partition.
type Service struct {
	Name    string
	Path    string
	Args    []string
	LogFile string

	mu   sync.Mutex
	pid  int
	stop bool
}

// PID 1 reaps every child, so services learn of their exit from the reaper
// rather than from Wait.
var (
	exitMu  sync.Mutex
	waiters = map[int]chan unix.WaitStatus{}
	early   = map[int]unix.WaitStatus{}
)

func supervisedExit(pid int, ws unix.WaitStatus) {
	exitMu.Lock()
	defer exitMu.Unlock()
	if ch, ok := waiters[pid]; ok {
		ch <- ws
		delete(waiters, pid)
		return
	}
	early[pid] = ws
}

func waitFor(pid int) <-chan unix.WaitStatus {
	ch := make(chan unix.WaitStatus, 1)
	exitMu.Lock()
	defer exitMu.Unlock()
	if ws, ok := early[pid]; ok {
		delete(early, pid)
		ch <- ws
		return ch
	}
	waiters[pid] = ch
	return ch
}

// Supervise runs the service until ctx ends or Stop is called.
func (s *Service) Supervise(ctx context.Context, log *slog.Logger) {
	backoff := time.Second
	for {
		s.mu.Lock()
		stopped := s.stop
		s.mu.Unlock()
		if stopped || ctx.Err() != nil {
			return
		}
		started := time.Now()
		ws, err := s.runOnce(log)
		if err != nil {
			log.Error("cannot start", "err", err, "retry_in", backoff)
		} else {
			log.Warn("exited", "status", describe(ws), "ran", time.Since(started).Round(time.Second), "restart_in", backoff)
		}
		if time.Since(started) > time.Minute {
			backoff = time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, time.Minute)
	}
}

func describe(ws unix.WaitStatus) string {
	if ws.Signaled() {
		return "killed by " + ws.Signal().String()
	}
	return fmt.Sprintf("exit code %d", ws.ExitStatus())
}

func (s *Service) runOnce(log *slog.Logger) (unix.WaitStatus, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer r.Close()
	var logf io.Writer = io.Discard
	if s.LogFile != "" {
		os.MkdirAll(filepath.Dir(s.LogFile), 0o755)
		if f, err := os.OpenFile(s.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640); err == nil {
			defer f.Close()
			logf = f
		}
	}
	attr := &os.ProcAttr{Files: []*os.File{nil, w, w}, Sys: &syscall.SysProcAttr{Setsid: true}}
	p, err := os.StartProcess(s.Path, append([]string{s.Path}, s.Args...), attr)
	w.Close()
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	s.pid = p.Pid
	s.mu.Unlock()
	exited := waitFor(p.Pid)
	log.Info("started", "pid", p.Pid)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintf(logf, "%s %s\n", time.Now().UTC().Format(time.RFC3339), line)
		log.Info(line)
	}
	ws := <-exited
	s.mu.Lock()
	s.pid = 0
	s.mu.Unlock()
	return ws, nil
}

// Stop ends the service: SIGTERM, then SIGKILL after grace.
func (s *Service) Stop(grace time.Duration) {
	s.mu.Lock()
	s.stop = true
	pid := s.pid
	s.mu.Unlock()
	if pid == 0 {
		return
	}
	unix.Kill(pid, unix.SIGTERM)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if unix.Kill(pid, 0) != nil {
			return
		}
		reap()
		time.Sleep(100 * time.Millisecond)
	}
	unix.Kill(pid, unix.SIGKILL)
}
