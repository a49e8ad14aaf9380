package pid1

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/cairn-os/cairn/boot"
	"github.com/cairn-os/cairn/configs"
	"github.com/cairn-os/cairn/internal/atomicfile"
)

func (s *stage2) loadConfig(ctx context.Context, log *slog.Logger) error {
	var err error
	if s.info, err = boot.ReadInfo(); err != nil {
		return err
	}
	cmd, _ := os.ReadFile("/proc/cmdline")
	s.args = boot.ParseCmdline(string(cmd))
	name := boot.CardConfig + " on the boot partition"
	cfg, warns, cardErr, err := configs.LoadWithCard(boot.ConfigPath, boot.CardConfigCopy, name)
	for _, w := range warns {
		log.Warn(w.String())
	}
	if err != nil {
		return err
	}
	s.cfg = cfg
	if cardErr != nil {
		for _, line := range strings.Split(cardErr.Error(), "\n") {
			log.Error(line)
		}
		log.Error("not using " + name + "; booting with the config baked into the image. Fix it with `cairn config validate` and put it back on the card")
	} else if sections := cfg.Sections(name); len(sections) > 0 {
		log.Info("using "+name, "sections", strings.Join(sections, ","))
	}
	log.Info("Cairn", "version", s.info.Version, "board", s.info.Board, "kernel", s.info.Kernel, "slot", s.args[boot.ArgSlot])
	return handOver(cfg)
}

// handOver writes the config init resolved where cairnd reads it, so that
// both run with the same one and only init reports its problems.
func handOver(cfg *configs.Config) error {
	data, err := cfg.Marshal()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(boot.EffectiveConfig), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(boot.EffectiveConfig, data, 0o600)
}
