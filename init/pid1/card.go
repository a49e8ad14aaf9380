package pid1

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/cairn-os/cairn/boot"
	"github.com/cairn-os/cairn/configs"
	"golang.org/x/sys/unix"
)

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
