package pid1

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestWatchdogHandOver hands an armed watchdog (here /dev/null, a
// character device as the watchdog is) from stage 1 to stage 2: it stays
// open across the exec, named in the environment, and once adopted it is
// closed on exec again, so no service inherits it.
func TestWatchdogHandOver(t *testing.T) {
	var out bytes.Buffer
	one := newWatchdog(newLogger(&out, false))
	if one.armed() || one.handOver() != nil {
		t.Fatal("a watchdog never armed is armed, or handed over")
	}
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	one.feed(f)
	env := one.handOver()
	if len(env) != 1 || !strings.HasPrefix(env[0], watchdogFD+"=") {
		t.Fatalf("handed over as %q", env)
	}
	if flags, _ := unix.FcntlInt(f.Fd(), unix.F_GETFD, 0); flags&unix.FD_CLOEXEC != 0 {
		t.Error("the watchdog handed over is closed on exec")
	}
	t.Setenv(watchdogFD, strings.TrimPrefix(env[0], watchdogFD+"="))
	two := newWatchdog(newLogger(&out, false))
	if !two.adopt() || !two.armed() {
		t.Fatal("stage 2 did not adopt the watchdog")
	}
	if os.Getenv(watchdogFD) != "" {
		t.Error("the environment still names the watchdog")
	}
	if flags, _ := unix.FcntlInt(f.Fd(), unix.F_GETFD, 0); flags&unix.FD_CLOEXEC == 0 {
		t.Error("the adopted watchdog is not closed on exec")
	}
	// Not a character device: not adopted.
	p, _ := os.Create(t.TempDir() + "/file")
	t.Setenv(watchdogFD, strconv.Itoa(int(p.Fd())))
	if newWatchdog(newLogger(&out, false)).adopt() {
		t.Error("a plain file was adopted as the watchdog")
	}
}

// TestWatchdogFedAtHandOver: handing the watchdog over feeds it, so that
// the exec into stage 2 has the whole timeout. A pty stands for it (a
// character device whose other end sees each write).
func TestWatchdogFedAtHandOver(t *testing.T) {
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skip("no pty here:", err)
	}
	defer ptm.Close()
	if err := unix.IoctlSetPointerInt(int(ptm.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(ptm.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	pts, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_WRONLY|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	w := newWatchdog(newLogger(&out, false))
	w.feed(pts) // feeds at once, then every 5 s
	got := make(chan int, 1)
	go func() {
		fed := 0
		buf := make([]byte, 16)
		for fed < 2 {
			k, err := ptm.Read(buf)
			if err != nil {
				break
			}
			fed += k
		}
		got <- fed
	}()
	w.handOver()
	select {
	case fed := <-got:
		if fed != 2 {
			t.Errorf("fed %d times", fed)
		}
	case <-time.After(feedEvery - time.Second):
		t.Error("handing the watchdog over did not feed it")
	}
}

// TestWatchdogTrial: on a trial boot the feeding stops at the trial's
// deadline, and a commit lifts it.
func TestWatchdogTrial(t *testing.T) {
	var out bytes.Buffer
	w := newWatchdog(newLogger(&out, false))
	w.trialUntil(time.Now().Add(-time.Second))
	if why := w.starving(); why != "the slot on trial ran past its trial" {
		t.Errorf("past the trial: %q", why)
	}
	w.trialUntil(time.Now().Add(time.Hour))
	w.running("network", time.Minute)
	if why := w.starving(); why != "" {
		t.Errorf("inside the trial and the phase's limit: %q", why)
	}
	w.trialUntil(time.Time{})
	if why := w.starving(); why != "" {
		t.Errorf("committed: %q", why)
	}
}
