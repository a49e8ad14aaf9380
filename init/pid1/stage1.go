package pid1

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cairn-os/cairn/boot"
	"github.com/cairn-os/cairn/configs"
	"github.com/cairn-os/cairn/init/disk"
	"github.com/u-root/u-root/pkg/mount"
	"golang.org/x/sys/unix"
)

// Stage-1 state shared by its phases.
type stage1 struct {
	info boot.BuildInfo // from the initramfs: the family, the smallest data partition
	args map[string]string
	disk *disk.Disk
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
		{"mounts", func(ctx context.Context, log *slog.Logger) error { return mountAll(earlyMounts) }, Reboot},
		{"cmdline", s.cmdline, Reboot},
		{"modules", func(ctx context.Context, log *slog.Logger) error { return loadAll(log, "") }, Continue},
		{"disk", s.findDisk, Reboot},
		{"card config", s.cardConfig, Continue},
		{"root", s.mountRoot, Reboot},
		{"data", s.data, Reboot},
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

// cardConfig copies cairn.yaml from the first partition, if a user put one
// there, for stage 2 to lay over the baked-in config. The partition is
// mounted read-only and only for the copy.
func (s *stage1) cardConfig(ctx context.Context, log *slog.Logger) error {
	dir := "/run/cairn/boot-partition/mnt"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	part := s.disk.Part(boot.PartBoot)
	if err := unix.Mount(part, dir, "vfat", unix.MS_RDONLY|unix.MS_NOEXEC|unix.MS_NOSUID|unix.MS_NODEV, "utf8"); err != nil {
		return fmt.Errorf("mount the boot partition %s: %w", part, err)
	}
	defer unix.Unmount(dir, 0)
	n, err := copyCardConfig(filepath.Join(dir, boot.CardConfig), boot.CardConfigCopy)
	if n > 0 {
		log.Info("found "+boot.CardConfig+" on the boot partition", "bytes", n)
	}
	return err
}

// copyCardConfig copies the card's config, if there is one, and returns
// its size. A file over configs.MaxFileBytes is not copied: stage 2 then
// boots with the baked-in config, as with any card config it cannot use.
func copyCardConfig(src, dst string) (int, error) {
	data, err := configs.ReadFile(src)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("not using %s on the boot partition: %w", boot.CardConfig, err)
	}
	return len(data), os.WriteFile(dst, data, 0o600)
}

func (s *stage1) mountRoot(ctx context.Context, log *slog.Logger) error {
	part := s.disk.Part(boot.SlotPart(s.args[boot.ArgSlot]))
	src := part
	if s.info.Family.RootInSlotFile() {
		// A FAT slot (Raspberry Pi): the root is a file in it.
		slotDir := "/run/cairn/slot"
		os.MkdirAll(slotDir, 0o755)
		if err := unix.Mount(part, slotDir, "vfat", unix.MS_RDONLY, "utf8"); err != nil {
			return fmt.Errorf("mount slot %s: %w", part, err)
		}
		loop, err := loopAttach(filepath.Join(slotDir, boot.RootFile))
		if err != nil {
			return err
		}
		src = loop
	}
	os.MkdirAll(newRoot, 0o755)
	if err := unix.Mount(src, newRoot, "squashfs", unix.MS_RDONLY, ""); err != nil {
		return fmt.Errorf("mount root %s: %w", src, err)
	}
	log.Info("root mounted read-only", "from", src)
	return nil
}

// loopAttach binds a file to a free loop device, read-only.
func loopAttach(file string) (string, error) {
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		return "", fmt.Errorf("loop-control: %w", err)
	}
	defer ctl.Close()
	n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
	if err != nil {
		return "", fmt.Errorf("no free loop device: %w", err)
	}
	dev := fmt.Sprintf("/dev/loop%d", n)
	lf, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return "", err
	}
	defer lf.Close()
	bf, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer bf.Close()
	if err := unix.IoctlSetInt(int(lf.Fd()), unix.LOOP_SET_FD, int(bf.Fd())); err != nil {
		return "", fmt.Errorf("attach %s to %s: %w", file, dev, err)
	}
	// No LO_FLAGS_AUTOCLEAR: it would detach the file as soon as lf closes,
	// before anything mounts the device. The root stays attached for good.
	// The device is read-only because the file is open read-only.
	var info unix.LoopInfo64
	copy(info.File_name[:], file)
	if err := unix.IoctlLoopSetStatus64(int(lf.Fd()), &info); err != nil {
		return "", err
	}
	return dev, nil
}

// chrootRun runs a tool from the new root (e2fsprogs live there).
func chrootRun(log *slog.Logger, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: newRoot}
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// data creates the data partition on first boot (formatting it ext4), grows
// it when the disk grew, checks it, and mounts it on /var.
func (s *stage1) data(ctx context.Context, log *slog.Logger) error {
	created, grew, err := s.disk.DataPartition(boot.PartData, s.info.MinData)
	if err != nil {
		return err
	}
	if err := s.disk.WaitPart(boot.PartData, 10*time.Second); err != nil {
		return err
	}
	// The e2fsprogs tools run chrooted in the root and need /dev there.
	for _, m := range []string{"/dev", "/proc", "/sys", "/run"} {
		if err := mount.MoveMount(m, newRoot+m); err != nil {
			return fmt.Errorf("move %s into the root: %w", m, err)
		}
	}
	dev := s.disk.Part(boot.PartData)
	if created {
		log.Info("first boot: formatting the data partition", "dev", dev)
		if err := chrootRun(log, "/sbin/mke2fs", "-q", "-F", "-t", "ext4", "-L", "cairn-data", "-E", "lazy_itable_init=1,lazy_journal_init=1", dev); err != nil {
			return err
		}
	} else if err := chrootRun(log, "/sbin/e2fsck", "-p", dev); err != nil {
		log.Warn("data partition check reported problems", "err", err)
	}
	if grew {
		if err := chrootRun(log, "/sbin/resize2fs", dev); err != nil {
			return err
		}
		log.Info("data partition grown to the end of the disk", "dev", dev)
	}
	if err := unix.Mount(newRoot+dev, newRoot+"/var", "ext4", unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("mount data %s on /var: %w", dev, err)
	}
	var st unix.Statfs_t
	unix.Statfs(newRoot+"/var", &st)
	log.Info("data partition mounted on /var", "dev", dev, "size_mib", int64(st.Blocks)*st.Bsize>>20, "created", created)
	return nil
}

// Stage1 runs in the initramfs and ends by executing the root's init.
func Stage1() {
	log := newLogger(console(), false)
	log.Info("stage 1 starting")
	s := &stage1{}
	ctx := context.Background()
	if err := runPhases(ctx, log, s.phases()); err != nil {
		fatal(log, err)
	}
	console().Flush(5 * time.Second) // exec ends the goroutine that writes it out
	if err := switchRoot(); err != nil {
		fatal(log, err)
	}
}

func switchRoot() error {
	if err := os.Chdir(newRoot); err != nil {
		return err
	}
	if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move the root: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return err
	}
	os.Chdir("/")
	env := append(os.Environ(), "CAIRN_STAGE=2")
	return unix.Exec("/sbin/init", []string{"/sbin/init"}, env)
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
