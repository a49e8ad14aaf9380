// Package service runs a program as a supervised process, for init (which
// runs cairnd) and for cairnd (which runs its components and upstream
// programs): a restart policy with a growing, capped wait between runs,
// the output kept in a log file of bounded size (one older file kept) and
// handed line by line to a callback, the last lines remembered for the
// message that says why it stopped, and a stop that asks first (SIGTERM)
// and insists after a grace period. It decides nothing about what runs.
package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/cairn-os/cairn/internal/retry"
)

// Policy says when a process that exited runs again.
type Policy int

const (
	// Forever restarts it whatever its exit.
	Forever Policy = iota
	// UntilSuccess restarts it after a failure and is done after exit 0.
	UntilSuccess
	// Once never restarts it.
	Once
)

// Service is one supervised program.
type Service struct {
	Name string
	// Command makes the command of each run (made with exec.Command, not
	// exec.CommandContext: Run stops it itself). Run sets its output.
	Command func() *exec.Cmd
	Policy  Policy
	// LogFile keeps the output, moved to LogFile.1 past LogMax bytes
	// (default 20 MiB); Stamp puts the time before each line.
	LogFile string
	LogMax  int64
	Stamp   bool
	// Line, if set, is given each line of output as well. It must not
	// block for long: the program waits while it does.
	Line func(string)
	// Start and Wait run the command (default: its own Start and Wait);
	// PID 1 passes its reaper's, so that it does not take their exits.
	Start, Wait func(*exec.Cmd) error
	// Backoff is the wait between runs; a run longer than ResetAfter
	// (default 2 minutes) starts it over.
	Backoff    retry.Backoff
	ResetAfter time.Duration
	// Grace is how long a stopped program has between SIGTERM and
	// SIGKILL (default 10 s). A program in a session or process group of
	// its own (Setsid, Setpgid) is killed with its whole group.
	Grace time.Duration
	Log   *slog.Logger
}

// Run runs the service until ctx ends or its policy says it is done. It
// returns the last run's error when the policy ends it on one.
func (s *Service) Run(ctx context.Context) error {
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	out := &Rotating{Path: s.LogFile, Max: s.LogMax}
	defer out.Close()
	resetAfter := s.ResetAfter
	if resetAfter == 0 {
		resetAfter = 2 * time.Minute
	}
	for {
		started := time.Now()
		err, tail := s.runOnce(ctx, log, out)
		if ctx.Err() != nil {
			return nil
		}
		if s.Policy == Once || s.Policy == UntilSuccess && err == nil {
			log.Info("finished", "service", s.Name, "err", err)
			return err
		}
		if time.Since(started) > resetAfter {
			s.Backoff.Reset()
		}
		wait := s.Backoff.Next()
		log.Error("exited; restarting", "service", s.Name, "err", exitError(err), "ran", time.Since(started).Round(time.Second), "in", wait, "last_output", tail)
		if retry.Sleep(ctx, wait) != nil {
			return nil
		}
	}
}

// runOnce starts the program and copies its output until it exits.
func (s *Service) runOnce(ctx context.Context, log *slog.Logger, out io.Writer) (error, string) {
	cmd := s.Command()
	grace := s.Grace
	if grace == 0 {
		grace = 10 * time.Second
	}
	cmd.WaitDelay = grace
	// Not an *os.File: exec copies the output itself, and Wait stops
	// waiting for that copy WaitDelay after the program exits, when a
	// process it started holds the pipe open.
	r, w := io.Pipe()
	cmd.Stdout, cmd.Stderr = w, w
	tail := &lastLines{n: 5}
	copied := make(chan struct{})
	go func() {
		copyLines(r, out, s.Stamp, func(line string) {
			tail.add(line)
			if s.Line != nil {
				s.Line(line)
			}
		})
		close(copied)
	}()
	start, wait := s.Start, s.Wait
	if start == nil {
		start = (*exec.Cmd).Start
	}
	if wait == nil {
		wait = (*exec.Cmd).Wait
	}
	err := start(cmd)
	if err == nil {
		log.Info("started", "service", s.Name, "program", cmd.Path, "pid", cmd.Process.Pid)
		exited := make(chan struct{})
		go stopOnCancel(ctx, cmd, grace, exited)
		err = wait(cmd)
		close(exited)
	}
	w.Close()
	<-copied
	return err, tail.String()
}

// stopOnCancel asks the program to stop (SIGTERM) when ctx ends, and
// kills it grace later if it has not exited by then.
func stopOnCancel(ctx context.Context, cmd *exec.Cmd, grace time.Duration, exited <-chan struct{}) {
	select {
	case <-exited:
		return
	case <-ctx.Done():
	}
	cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-exited:
	case <-t.C:
		cmd.Process.Kill()
		if a := cmd.SysProcAttr; a != nil && (a.Setsid || a.Setpgid) {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // what it started too
		}
	}
}

// exitError names how a program ended: its exit code or the signal.
func exitError(err error) error {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return err
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return fmt.Errorf("killed by %s", ws.Signal())
	}
	return fmt.Errorf("exit code %d", ee.ExitCode())
}

// lastLines keeps the last n lines.
type lastLines struct {
	n     int
	lines []string
}

func (l *lastLines) add(s string) {
	l.lines = append(l.lines, s)
	if len(l.lines) > l.n {
		l.lines = l.lines[1:]
	}
}

func (l *lastLines) String() string { return strings.Join(l.lines, " | ") }
