// Package pid1 is the device's init: stage 1 in the initramfs (modules, boot
// disk, root, data partition, switch_root) and stage 2 in the root (system
// setup, network, time, files, supervised services, health). Each stage is a
// table of named phases; the table says what a failure means. Init never
// exits: a fatal failure reboots after telling why. It holds no Kubernetes
// code; cairnd is a service it supervises.
package pid1

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/cairn-os/cairn/internal/retry"
)

// OnFail says what a failed phase means.
type OnFail int

const (
	// Continue logs the failure and goes on: the system is degraded, not broken.
	Continue OnFail = iota
	// Retry runs the phase again with back-off until it succeeds.
	Retry
	// Reboot restarts the machine after saying why. It marks nothing: a
	// slot on trial is not committed, so its boot loader's own counter or
	// one-shot flag brings the committed slot back.
	Reboot
)

func (f OnFail) String() string {
	return [...]string{"continuing without it", "retrying", "rebooting"}[f]
}

// Phase is one named step of the boot.
type Phase struct {
	Name   string
	Run    func(ctx context.Context, log *slog.Logger) error
	OnFail OnFail
	// When, if set, says whether the phase runs at all on this boot (a
	// diskless boot has no data partition to make, say); it is asked when
	// the phase's turn comes, so earlier phases can decide it.
	When func() bool
	// Limit is how long one run of the phase may take before init stops
	// feeding the watchdog (phaseLimit when zero): a phase that hangs
	// resets the board, and a slot on trial is then given up.
	Limit time.Duration
}

// phaseLimit is the time limit of a phase that sets none.
const phaseLimit = 2 * time.Minute

// phaseBackoff is the wait between tries of a Retry phase.
var phaseBackoff = retry.Backoff{Min: time.Second, Max: 30 * time.Second}

// errReboot is returned by runPhases when a Reboot phase failed.
type errReboot struct {
	phase string
	err   error
}

func (e errReboot) Error() string { return fmt.Sprintf("phase %s failed: %v", e.phase, e.err) }

func (e errReboot) Unwrap() error { return e.err }

// runPhases runs the table in order, one console line per phase, and
// tells the watchdog (when there is one) which phase runs until when.
func runPhases(ctx context.Context, log *slog.Logger, phases []Phase, dog *watchdog) error {
	defer dog.running("", 0)
	for _, p := range phases {
		if p.When != nil && !p.When() {
			continue
		}
		l := log.With("phase", p.Name)
		start := time.Now()
		b := phaseBackoff
		limit := p.Limit
		if limit == 0 {
			limit = phaseLimit
		}
		for {
			dog.running(p.Name, limit)
			err := p.Run(ctx, l)
			if err == nil {
				l.Debug("done", "took", time.Since(start).Round(time.Millisecond))
				break
			}
			l.Error("failed", "err", err, "next", p.OnFail.String())
			if p.OnFail == Continue {
				break
			}
			if p.OnFail == Reboot {
				return errReboot{p.Name, err}
			}
			dog.running(p.Name, limit) // the wait is not the try's
			if err := b.Wait(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}
