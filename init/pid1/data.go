package pid1

import (
	"context"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/cairn-os/cairn/boot"
	"golang.org/x/sys/unix"
)

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
// it when the disk grew, checks it, and mounts it on the new root's /var.
// The e2fsprogs tools live in the root and run chrooted there, after
// enterRoot.
func (s *stage1) data(ctx context.Context, log *slog.Logger) error {
	created, grew, err := s.disk.DataPartition(boot.PartData, s.info.MinData)
	if err != nil {
		return err
	}
	if err := s.disk.WaitPart(boot.PartData, 10*time.Second); err != nil {
		return err
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
	if err := unix.Mount(dev, newRoot+"/var", "ext4", unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("mount data %s on /var: %w", dev, err)
	}
	var st unix.Statfs_t
	unix.Statfs(newRoot+"/var", &st)
	log.Info("data partition mounted on /var", "dev", dev, "size_mib", int64(st.Blocks)*st.Bsize>>20, "created", created)
	return nil
}
