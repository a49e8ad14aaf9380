package pid1

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/cairn-os/cairn/boot"
	"golang.org/x/sys/unix"
)

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

func switchRoot(env ...string) error {
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
	env = append(append(os.Environ(), "CAIRN_STAGE=2"), env...)
	return unix.Exec("/sbin/init", []string{"/sbin/init"}, env)
}

// enterRoot makes /dev, /proc, /sys and /run seen from the new root as
// from here (bind mounts), for the tools stage 1 runs chrooted there and
// for stage 2, which keeps them after switch_root.
func (s *stage1) enterRoot(ctx context.Context, log *slog.Logger) error {
	for _, m := range []string{"/dev", "/proc", "/sys", "/run"} {
		if err := unix.Mount(m, newRoot+m, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind %s into the root: %w", m, err)
		}
	}
	return nil
}
