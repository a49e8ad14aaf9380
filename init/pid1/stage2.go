package pid1

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/cairn-os/cairn/boot"
	"github.com/cairn-os/cairn/configs"
	"github.com/cairn-os/cairn/init/clock"
	"github.com/cairn-os/cairn/init/netup"
	"github.com/cairn-os/cairn/init/update"
	"github.com/cairn-os/cairn/internal/reaper"
	"github.com/u-root/u-root/pkg/kmodule"
	"golang.org/x/sys/unix"
)

// stage2 is the running system's state.
type stage2 struct {
	cfg      *configs.Config
	info     boot.BuildInfo
	args     map[string]string
	hostname string
	net      *netup.State
	netUp    atomic.Bool // the network phase succeeded, or a link got an address since
	began    time.Time   // when stage 2 started
	updater  *update.Node
	dog      *watchdog
	// rebootArg is what the next restart passes to the kernel: the
	// updater's ask for a trial (family.TrialReboot), or nothing.
	rebootArg atomic.Pointer[string]
	services  []*running
	ctx       context.Context
}

// running is a service init started, and how to stop it.
type running struct {
	stop context.CancelFunc
	done chan struct{}
}

func (s *stage2) phases() []Phase {
	return []Phase{
		{Name: "mounts", Run: s.mounts, OnFail: Reboot},
		{Name: "config", Run: s.loadConfig, OnFail: Reboot},
		{Name: "clock", Run: s.clockFloor, OnFail: Continue},
		{Name: "hostname", Run: s.setHostname, OnFail: Continue},
		{Name: "modules", Run: func(ctx context.Context, log *slog.Logger) error {
			return loadModules(log, kmodule.ProbeOpts{}, append(s.info.Modules, s.cfg.Modules...))
		}, OnFail: Continue},
		{Name: "sysctl", Run: s.sysctl, OnFail: Continue},
		{Name: "watchdog", Run: s.watchdog, OnFail: Continue},
		{Name: "trial", Run: s.trial, OnFail: Continue},
		{Name: "etc", Run: s.etc, OnFail: Continue},
		{Name: "network", Run: s.network, OnFail: Continue, Limit: 5 * time.Minute}, // Wi-Fi, then DHCP
		{Name: "time", Run: s.timeSync, OnFail: Continue, Limit: 5 * time.Minute},   // names that resolve slowly
		{Name: "files", Run: s.files, OnFail: Continue},
		{Name: "services", Run: s.startServices, OnFail: Continue},
		{Name: "updates", Run: s.updates, OnFail: Continue},
	}
}

// Stage2 runs in the root as PID 1 and never returns.
func Stage2() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := newLogger(console(), false)
	s := &stage2{ctx: ctx, began: time.Now(), dog: newWatchdog(log)}
	s.dog.adopt() // before anything that may hang
	// Ctrl-Alt-Del sends SIGINT to init instead of resetting at once.
	unix.Reboot(unix.LINUX_REBOOT_CMD_CAD_OFF)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGUSR1, unix.SIGUSR2, unix.SIGCHLD)
	if err := runPhases(ctx, log, s.phases(), s.dog); err != nil {
		fatal(log, err)
	}
	debug := s.cfg.Debug.Console || s.args[boot.ArgDebug] == "1"
	ip := "none"
	if s.net != nil {
		ip = s.net.FirstIP()
	}
	fmt.Fprintf(console(), "cairn: ready slot=%s ip=%s hostname=%s version=%s debug=%t\n", s.args[boot.ArgSlot], ip, s.hostname, s.info.Version, debug)
	// The debug console starts only after the ready line, so its greeting
	// always follows it on the console.
	if debug {
		go debugConsole(log, s)
	}
	for sig := range sigs {
		switch sig {
		case unix.SIGCHLD:
			reaper.Reap()
		case unix.SIGTERM, unix.SIGUSR2:
			s.shutdown(log, cancel, unix.LINUX_REBOOT_CMD_POWER_OFF)
		case unix.SIGINT, unix.SIGUSR1:
			s.shutdown(log, cancel, unix.LINUX_REBOOT_CMD_RESTART)
		}
	}
}

// restartWith restarts the machine, passing arg to the kernel's restart
// handlers as `reboot ARG` does (reboot(2)'s RESTART2). It returns only
// when the kernel refused, which it says.
func restartWith(log *slog.Logger, arg string) {
	p, err := unix.BytePtrFromString(arg)
	if err == nil {
		_, _, errno := unix.Syscall6(unix.SYS_REBOOT, unix.LINUX_REBOOT_MAGIC1, unix.LINUX_REBOOT_MAGIC2, unix.LINUX_REBOOT_CMD_RESTART2, uintptr(unsafe.Pointer(p)), 0, 0)
		err = errno
	}
	log.Error("the kernel refused a restart that asks for something; restarting plainly", "arg", arg, "err", err)
	console().Flush(5 * time.Second)
}

func (s *stage2) shutdown(log *slog.Logger, cancel context.CancelFunc, how int) {
	log.Info("shutting down")
	for _, r := range s.services {
		r.stop() // SIGTERM, SIGKILL after 10 s
	}
	for _, r := range s.services {
		<-r.done
	}
	cancel()
	if err := clock.Save(); err != nil {
		log.Warn("saving the time", "err", err)
	}
	unix.Sync()
	for _, m := range []string{"/var", "/etc"} {
		if err := unix.Unmount(m, 0); err != nil {
			unix.Mount("", m, "", unix.MS_REMOUNT|unix.MS_RDONLY, "")
		}
	}
	unix.Sync()
	log.Info("goodbye")
	console().Flush(5 * time.Second)
	if arg := s.rebootArg.Load(); how == unix.LINUX_REBOOT_CMD_RESTART && arg != nil && *arg != "" {
		restartWith(log, *arg)
	}
	unix.Reboot(how)
	select {}
}
