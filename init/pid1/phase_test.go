package pid1

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cairn-os/cairn/internal/retry"
)

// TestPhaseTable runs a table whose rows fail in each way: a Continue
// failure is logged and passed, a Retry phase runs until it succeeds, a
// phase whose When says no is skipped, and a Reboot failure stops the
// table with the phase's name and cause.
func TestPhaseTable(t *testing.T) {
	phaseBackoff = retry.Backoff{Min: time.Millisecond, Max: time.Millisecond}
	var ran []string
	tries := 0
	broken := errors.New("no disk")
	step := func(name string, err func() error) func(context.Context, *slog.Logger) error {
		return func(context.Context, *slog.Logger) error { ran = append(ran, name); return err() }
	}
	var out bytes.Buffer
	log := newLogger(&out, false)
	dog := newWatchdog(log)
	var starving string
	err := runPhases(context.Background(), log, []Phase{
		{Name: "optional", Run: step("optional", func() error { return errors.New("no watchdog") }), OnFail: Continue},
		{Name: "flaky", Run: step("flaky", func() error {
			if tries++; tries < 3 {
				return errors.New("not yet")
			}
			return nil
		}), OnFail: Retry},
		{Name: "skipped", Run: step("skipped", func() error { return nil }), OnFail: Reboot, When: func() bool { return false }},
		// A phase that runs past its time limit starves the watchdog.
		{Name: "slow", Run: step("slow", func() error {
			time.Sleep(20 * time.Millisecond)
			starving = dog.starving()
			return nil
		}), OnFail: Continue, Limit: time.Millisecond},
		{Name: "vital", Run: step("vital", func() error { return broken }), OnFail: Reboot},
		{Name: "after", Run: step("after", func() error { return nil }), OnFail: Continue},
	}, dog)
	if starving != "phase slow ran past its time limit" {
		t.Errorf("the watchdog in a phase past its limit: %q", starving)
	}
	if why := dog.starving(); why != "" {
		t.Errorf("the watchdog after the phases: %q", why)
	}
	if got := strings.Join(ran, ","); got != "optional,flaky,flaky,flaky,slow,vital" {
		t.Errorf("ran %s", got)
	}
	if !errors.Is(err, broken) || !strings.Contains(err.Error(), "phase vital failed") {
		t.Errorf("err %v", err)
	}
	for _, want := range []string{
		"cairn: optional: ERROR failed err=\"no watchdog\" next=\"continuing without it\"\n",
		"cairn: flaky: ERROR failed err=\"not yet\" next=retrying\n",
		"cairn: vital: ERROR failed err=\"no disk\" next=rebooting\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("console lacks %q:\n%s", want, out.String())
		}
	}
}

// TestConsoleLines checks the one-line form of init's log records: the
// phase or service first, the level when it is not info, values with
// spaces quoted, debug records only when asked for.
func TestConsoleLines(t *testing.T) {
	var out bytes.Buffer
	log := newLogger(&out, false)
	log.With("phase", "network").Info("DHCP lease", "iface", "eth0", "addr", "10.0.2.15")
	log.With("phase", "services", "service", "cairnd").Warn("exited; restarting", "err", "exit code 1", "in", time.Second)
	log.Debug("not shown")
	log.Error("boot failed", "err", errors.New("no root"))
	want := "cairn: network: DHCP lease iface=eth0 addr=10.0.2.15\n" +
		"cairn: services: cairnd: WARNING exited; restarting err=\"exit code 1\" in=1s\n" +
		"cairn: ERROR boot failed err=\"no root\"\n"
	if out.String() != want {
		t.Errorf("console:\n%s\nwant:\n%s", out.String(), want)
	}
	out.Reset()
	newLogger(&out, true).Debug("shown", "took", "3ms")
	if out.String() != "cairn: shown took=3ms\n" {
		t.Errorf("debug: %q", out.String())
	}
}
