package pid1

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cairn-os/cairn/boot"
	"github.com/cairn-os/cairn/boot/bundle"
	"github.com/cairn-os/cairn/init/update"
	"github.com/cairn-os/cairn/internal/nodeapi"
	"golang.org/x/sys/unix"
)

// trial starts the updater's commit gate, early so that the time a slot
// on trial has to become healthy counts from the start of the boot; the
// watchdog phase before it lets the gate stop feeding the watchdog when a
// trial runs out.
func (s *stage2) trial(ctx context.Context, log *slog.Logger) error {
	if s.info.Family == boot.UEFI {
		os.MkdirAll("/sys/firmware/efi/efivars", 0o755)
		if err := unix.Mount("efivarfs", "/sys/firmware/efi/efivars", "efivarfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil && err != unix.EBUSY {
			log.Warn("no EFI variables: this node cannot arm a trial of an update", "err", err)
		}
	}
	s.updater = &update.Node{
		Info: s.info, Booted: s.args[boot.ArgSlot], DiskID: s.args[boot.ArgDisk], Hostname: s.hostname,
		Trial: s.cfg.Update.Trial(), Since: s.began, Log: log,
		Watchdog: s.dog.trialUntil,
		Reboot: func(arg string) {
			s.rebootArg.Store(&arg)
			time.AfterFunc(time.Second, func() { unix.Kill(1, unix.SIGINT) })
		},
	}
	if s.cfg.Cluster != nil {
		s.updater.Cluster = s.cfg.Cluster.ClusterName()
	}
	go s.updater.Gate(s.ctx, s.healthy)
	return nil
}

// updates polls update.url, when the config has one, and serves the node
// API when the image carries the fleet's credentials.
func (s *stage2) updates(ctx context.Context, log *slog.Logger) error {
	n := s.updater
	if n == nil {
		return errors.New("the updater did not start")
	}
	keys, err := trustedKeys(s)
	if err != nil {
		return err
	}
	n.Keys = keys
	if u := s.cfg.Update; u != nil && u.URL != "" {
		if len(keys) == 0 {
			log.Error("update.url is set but the node trusts no key (no update.publicKeys, no fleet key in the image), so it does not poll")
		} else {
			go n.Poll(s.ctx, u.URL, u.Poll())
		}
	}
	read := func(name string) []byte {
		data, rerr := os.ReadFile(filepath.Join(boot.FleetDir, name))
		if rerr != nil && err == nil {
			err = rerr
		}
		return data
	}
	ca, cert, key := read(nodeapi.FileCA), read(nodeapi.FileNode), read(nodeapi.FileNodeKey)
	if errors.Is(err, fs.ErrNotExist) {
		log.Info("this image has no fleet credentials, so no node API: it takes updates only by flashing (build it after cairn keys generate)")
		return nil
	}
	if err != nil {
		return err
	}
	conf, err := nodeapi.ServerTLS(ca, cert, key)
	if err != nil {
		return fmt.Errorf("node API credentials: %w", err)
	}
	ln, err := update.Listen()
	if err != nil {
		return err
	}
	go func() {
		if err := n.Serve(s.ctx, ln, conf); err != nil {
			log.Error("node API stopped", "err", err)
		}
	}()
	return nil
}

// trustedKeys are the keys whose bundles the node installs: the config's
// update.publicKeys, else the fleet's key baked into the image.
func trustedKeys(s *stage2) ([]ed25519.PublicKey, error) {
	var texts []string
	if u := s.cfg.Update; u != nil && len(u.PublicKeys) > 0 {
		texts = u.PublicKeys
	} else if data, err := os.ReadFile(filepath.Join(boot.FleetDir, nodeapi.FilePublicKey)); err == nil {
		texts = strings.Fields(string(data))
	}
	var keys []ed25519.PublicKey
	for _, t := range texts {
		k, err := bundle.ParsePublicKey(t)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// healthy is the commit gate's test: the network came up and, on a
// cluster node, cairnd reports its Node Ready.
func (s *stage2) healthy() (bool, string) {
	if !s.netUp.Load() {
		return false, "the network is not up"
	}
	if s.cfg.Cluster == nil {
		return true, ""
	}
	what, ok := boot.ReadHealth()
	if !ok || !strings.Contains(what, "node=ready") {
		return false, "cairnd does not report the node Ready (" + what + ")"
	}
	return true, ""
}
