package pid1

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/cairn-os/cairn/boot"
	"github.com/cairn-os/cairn/init/disk"
	"github.com/u-root/u-root/pkg/kmodule"
	"golang.org/x/sys/unix"
)

// Stage-1 state shared by its phases.
type stage1 struct {
	info boot.BuildInfo // from the initramfs: the family, the smallest data partition
	args map[string]string
	disk *disk.Disk
	dog  *watchdog
}

const newRoot = "/newroot"

type mnt struct {
	src, dst, fstype string
	flags            uintptr
	data             string
}

var earlyMounts = []mnt{
	{"proc", "/proc", "proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	{"sysfs", "/sys", "sysfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	{"devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID, "mode=0755"},
	{"tmpfs", "/run", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=0755"},
}

func mountAll(ms []mnt) error {
	for _, m := range ms {
		if err := os.MkdirAll(m.dst, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(m.src, m.dst, m.fstype, m.flags, m.data); err != nil && err != unix.EBUSY {
			return fmt.Errorf("mount %s on %s: %w", m.fstype, m.dst, err)
		}
	}
	return nil
}

func (s *stage1) phases() []Phase {
	return []Phase{
		{Name: "mounts", Run: func(ctx context.Context, log *slog.Logger) error { return mountAll(earlyMounts) }, OnFail: Reboot},
		{Name: "cmdline", Run: s.cmdline, OnFail: Reboot},
		{Name: "modules", Run: func(ctx context.Context, log *slog.Logger) error { return loadListed(log, kmodule.ProbeOpts{}) }, OnFail: Continue},
		{Name: "watchdog", Run: s.watchdog, OnFail: Continue},
		{Name: "disk", Run: s.findDisk, OnFail: Reboot},
		{Name: "card config", Run: s.cardConfig, OnFail: Continue},
		{Name: "root", Run: s.mountRoot, OnFail: Reboot},
		{Name: "enter root", Run: s.enterRoot, OnFail: Reboot},
		// A boot with no disk of its own (netboot) would have no data partition.
		// Making a large data partition's file system, or checking it, may take long.
		{Name: "data", Run: s.data, OnFail: Reboot, When: func() bool { return s.disk != nil }, Limit: 30 * time.Minute},
	}
}

func (s *stage1) cmdline(ctx context.Context, log *slog.Logger) error {
	data, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return err
	}
	s.args = boot.ParseCmdline(string(data))
	if s.info, err = boot.ReadInfo(); err != nil {
		return err
	}
	if s.args[boot.ArgSlot] != boot.SlotA && s.args[boot.ArgSlot] != boot.SlotB {
		return fmt.Errorf("%s=%q on the kernel command line; want a or b", boot.ArgSlot, s.args[boot.ArgSlot])
	}
	if s.args[boot.ArgDisk] == "" {
		return fmt.Errorf("no %s= on the kernel command line", boot.ArgDisk)
	}
	log.Info("booting", "slot", s.args[boot.ArgSlot], "disk", s.args[boot.ArgDisk])
	return nil
}

// watchdog arms the hardware watchdog as early as its driver is there:
// from here on a hang resets the board (stage 2 feeds it on).
func (s *stage1) watchdog(ctx context.Context, log *slog.Logger) error {
	ok, err := s.dog.open()
	switch {
	case err != nil:
		return err
	case ok:
		log.Info("hardware watchdog armed")
		fault("armed", log)
	case s.info.Watchdog != "":
		log.Info("the watchdog's driver is not in the initramfs: stage 2 arms it", "module", s.info.Watchdog)
	}
	return nil
}

func (s *stage1) findDisk(ctx context.Context, log *slog.Logger) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		d, err := disk.Find(s.args[boot.ArgDisk])
		if err == nil {
			s.disk = d
			log.Info("found boot disk", "dev", d.Dev, "gpt", d.GPT)
			return d.WaitPart(boot.PartSlotB, 10*time.Second)
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Stage1 runs in the initramfs and ends by executing the root's init.
func Stage1() {
	log := newLogger(console(), false)
	log.Info("stage 1 starting")
	fault("start", log)
	s := &stage1{dog: newWatchdog(log)}
	ctx := context.Background()
	if err := runPhases(ctx, log, s.phases(), s.dog); err != nil {
		fatal(log, err)
	}
	console().Flush(5 * time.Second) // exec ends the goroutine that writes it out
	if err := switchRoot(s.dog.handOver()...); err != nil {
		fatal(log, err)
	}
}

// fatal tells why and reboots after a pause; init never exits.
func fatal(log *slog.Logger, err error) {
	log.Error("boot failed; rebooting in 10s", "err", err)
	unix.Sync()
	deadline := time.Now().Add(10 * time.Second)
	console().Flush(10 * time.Second)
	time.Sleep(time.Until(deadline))
	unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART)
	select {}
}
