// Package clock keeps the device's time: a floor from the build date and the
// last saved time (boards without a real-time clock boot in 1970 otherwise),
// then NTP, with the time saved to the data partition now and then so the
// next boot starts close.
package clock

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/beevik/ntp"
	"github.com/cairn-os/cairn/internal/atomicfile"
	"golang.org/x/sys/unix"
)

// SavedPath is where the time is saved between boots.
const SavedPath = "/var/lib/cairn/clock"

func set(t time.Time) error {
	tv := unix.NsecToTimeval(t.UnixNano())
	return unix.Settimeofday(&tv)
}

// Floor sets the clock forward to the latest of the build time and the saved
// time when it is behind them, and returns which source won ("" when the
// clock was already later).
func Floor(build time.Time) (string, error) {
	floor, src := build, "build date"
	if data, err := os.ReadFile(SavedPath); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64); err == nil && time.Unix(n, 0).After(floor) {
			floor, src = time.Unix(n, 0), "saved time"
		}
	}
	if time.Now().After(floor) {
		return "", nil
	}
	return src, set(floor)
}

// Save writes the current time for the next boot's floor.
func Save() error {
	if err := os.MkdirAll(filepath.Dir(SavedPath), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(SavedPath, []byte(strconv.FormatInt(time.Now().Unix(), 10)+"\n"), 0o644)
}

// Sync asks the servers in turn and sets the clock from the first answer.
func Sync(servers []string) (string, time.Duration, error) {
	var errs []string
	for _, s := range servers {
		r, err := ntp.QueryWithOptions(s, ntp.QueryOptions{Timeout: 3 * time.Second})
		if err == nil {
			err = r.Validate()
		}
		if err != nil {
			errs = append(errs, s+": "+err.Error())
			continue
		}
		if err := set(time.Now().Add(r.ClockOffset)); err != nil {
			return "", 0, err
		}
		return s, r.ClockOffset, nil
	}
	return "", 0, fmt.Errorf("no NTP server answered (%s)", strings.Join(errs, "; "))
}

// Keep syncs every interval and saves the time, until ctx ends.
func Keep(ctx context.Context, log *slog.Logger, servers func() []string, interval time.Duration) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
		if s := servers(); len(s) > 0 {
			if _, _, err := Sync(s); err != nil {
				log.Warn("time sync", "err", err)
			}
		}
		if err := Save(); err != nil {
			log.Warn("saving the time", "err", err)
		}
	}
}
