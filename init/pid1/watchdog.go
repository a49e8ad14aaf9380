package pid1

import (
	"log/slog"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// watchdogFD names, in stage 2's environment, the descriptor of the
// watchdog stage 1 armed: the device opens once, so it is handed over
// across the exec rather than opened again.
const watchdogFD = "CAIRN_WATCHDOG_FD"

// feedEvery is how often the watchdog is fed: well inside the shortest
// timeout of the boards' watchdogs (the Raspberry Pi's, 15 s).
const feedEvery = 5 * time.Second

// watchdog feeds the hardware watchdog from a goroutine while init makes
// progress: not after the running phase's time limit, and on a slot on
// trial not after a little more than its trial. Past either, the board
// resets, and a slot on trial is given up by its boot loader. Deadlines
// are durations since start, on the monotonic clock: NTP may step the
// wall clock.
type watchdog struct {
	start time.Time
	log   *slog.Logger
	file  atomic.Pointer[os.File] // nil until armed
	phase atomic.Pointer[string]  // the running phase, for the log
	until atomic.Int64            // the phase's deadline; 0: none
	trial atomic.Int64            // the trial's deadline; 0: none
}

func newWatchdog(log *slog.Logger) *watchdog {
	return &watchdog{start: time.Now(), log: log}
}

// armed says whether the watchdog is armed.
func (w *watchdog) armed() bool { return w.file.Load() != nil }

// open arms the watchdog. It reports false when the system has none.
func (w *watchdog) open() (bool, error) {
	fd, err := unix.Open("/dev/watchdog", unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if os.IsNotExist(err) || err == unix.ENODEV {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	w.feed(os.NewFile(uintptr(fd), "/dev/watchdog"))
	return true, nil
}

// adopt takes over the watchdog stage 1 armed, when it handed one over.
func (w *watchdog) adopt() bool {
	v, ok := os.LookupEnv(watchdogFD)
	if !ok {
		return false
	}
	os.Unsetenv(watchdogFD)
	fd, err := strconv.Atoi(v)
	var st unix.Stat_t
	if err != nil || fd < 3 || unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR {
		w.log.Error("stage 1 handed over no watchdog that stage 2 can use; arming it anew", watchdogFD, v)
		return false
	}
	unix.CloseOnExec(fd) // not for the services init starts
	w.feed(os.NewFile(uintptr(fd), "/dev/watchdog"))
	return true
}

// handOver leaves the watchdog open across the exec into stage 2 and
// returns the environment entry that names it (none when none is armed).
func (w *watchdog) handOver() []string {
	f := w.file.Load()
	if f == nil {
		return nil
	}
	if _, err := unix.FcntlInt(f.Fd(), unix.F_SETFD, 0); err != nil {
		w.log.Error("cannot hand the watchdog over to stage 2, which opens it again", "err", err)
		return nil
	}
	// A last feed: the exec and stage 2's start until it adopts the
	// watchdog then have its whole timeout (30 s on QEMU's i6300esb, 15 s
	// on a Pi), not what was left of it after the last feed and the
	// console's flush (up to 10 s gone: a good slot's trial reset by a
	// busy host once).
	if w.starving() == "" {
		f.Write([]byte{0})
	}
	return []string{watchdogFD + "=" + strconv.Itoa(int(f.Fd()))}
}

func (w *watchdog) feed(f *os.File) {
	w.file.Store(f)
	go func() {
		told := false
		for {
			if why := w.starving(); why == "" {
				f.Write([]byte{0})
				told = false
			} else if !told {
				w.log.Error("no longer feeding the watchdog: the board resets when it runs out", "why", why)
				console().Flush(time.Second)
				told = true
			}
			time.Sleep(feedEvery)
		}
	}()
}

// starving says why the watchdog is not fed now, or "".
func (w *watchdog) starving() string {
	now := time.Since(w.start)
	if d := w.until.Load(); d != 0 && now > time.Duration(d) {
		name := ""
		if p := w.phase.Load(); p != nil {
			name = *p
		}
		return "phase " + name + " ran past its time limit"
	}
	if d := w.trial.Load(); d != 0 && now > time.Duration(d) {
		return "the slot on trial ran past its trial"
	}
	return ""
}

func (w *watchdog) deadline(to *atomic.Int64, until time.Time) {
	var d time.Duration
	if !until.IsZero() {
		d = max(until.Sub(w.start), 1)
	}
	to.Store(int64(d))
}

// running notes the phase now running and the time it may take; a zero
// limit lifts the phase's deadline (the phases are over).
func (w *watchdog) running(phase string, limit time.Duration) {
	if w == nil {
		return
	}
	w.phase.Store(&phase)
	if limit == 0 {
		w.until.Store(0)
		return
	}
	w.deadline(&w.until, time.Now().Add(limit))
}

// trialUntil stops the feeding at until (the zero time: never).
func (w *watchdog) trialUntil(until time.Time) { w.deadline(&w.trial, until) }
