package pid1

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cairn-os/cairn/init/clock"
	"github.com/cairn-os/cairn/init/netup"
	"golang.org/x/sys/unix"
)

var lateMounts = []mnt{
	{"tmpfs", "/tmp", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777"},
	{"devpts", "/dev/pts", "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, "mode=0620,ptmxmode=0666"},
	{"tmpfs", "/dev/shm", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777"},
	{"cgroup2", "/sys/fs/cgroup", "cgroup2", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	{"tmpfs", "/run/cairn/etc", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=0755"},
}

func (s *stage2) mounts(ctx context.Context, log *slog.Logger) error {
	if err := mountAll(lateMounts); err != nil {
		return err
	}
	// /etc is generated: the root's /etc copied into a tmpfs and bound over it.
	if err := copyTree("/etc", "/run/cairn/etc"); err != nil {
		return err
	}
	if err := unix.Mount("/run/cairn/etc", "/etc", "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind /etc: %w", err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs("/", &st); err == nil && st.Flags&unix.ST_RDONLY != 0 {
		log.Info("root is read-only", "fs", "squashfs")
	}
	return nil
}

func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(target, info.Mode().Perm())
		case info.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			return os.Symlink(l, target)
		default:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(target, data, info.Mode().Perm())
		}
	})
}

func (s *stage2) clockFloor(ctx context.Context, log *slog.Logger) error {
	src, err := clock.Floor(time.Unix(s.info.Epoch, 0))
	if src != "" {
		log.Info("clock set forward", "from", src, "now", time.Now().UTC().Format(time.RFC3339))
	}
	return err
}

func (s *stage2) setHostname(ctx context.Context, log *slog.Logger) error {
	s.hostname = s.cfg.Hostname
	if s.hostname == "" {
		s.hostname = "cairn"
		if ifs, err := net.Interfaces(); err == nil {
			for _, i := range ifs {
				if hw := i.HardwareAddr; len(hw) == 6 && i.Flags&net.FlagLoopback == 0 {
					s.hostname = fmt.Sprintf("cairn-%02x%02x%02x", hw[3], hw[4], hw[5])
					break
				}
			}
		}
	}
	if err := unix.Sethostname([]byte(s.hostname)); err != nil {
		return err
	}
	log.Info("hostname set", "hostname", s.hostname)
	return nil
}

func (s *stage2) sysctl(ctx context.Context, log *slog.Logger) error {
	var failed []string
	for k, v := range s.cfg.Sysctl {
		p := "/proc/sys/" + strings.ReplaceAll(k, ".", "/")
		if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
			failed = append(failed, k)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("could not set %s", strings.Join(failed, ", "))
	}
	log.Info("sysctl applied", "count", len(s.cfg.Sysctl))
	return nil
}

// watchdog arms the hardware watchdog, unless stage 1 did; if init hangs,
// the board resets (see watchdog).
func (s *stage2) watchdog(ctx context.Context, log *slog.Logger) error {
	if s.dog.armed() {
		log.Info("hardware watchdog armed since stage 1", "module", s.info.Watchdog)
		return nil
	}
	ok, err := s.dog.open()
	if err != nil {
		return err
	}
	if !ok {
		log.Info("no hardware watchdog")
		return nil
	}
	log.Info("hardware watchdog armed", "module", s.info.Watchdog)
	return nil
}

// etcFiles are the files init writes into /etc at every boot. files[] may
// replace /etc/hosts and /etc/nsswitch.conf, which it writes after them;
// configs.Reserved keeps it off the others.
func etcFiles(hostname string) map[string]string {
	return map[string]string{
		"/etc/hostname":      hostname + "\n",
		"/etc/hosts":         fmt.Sprintf("127.0.0.1 localhost\n::1 localhost\n127.0.1.1 %s\n", hostname),
		"/etc/passwd":        "root:x:0:0:root:/root:/bin/false\n",
		"/etc/group":         "root:x:0:\n",
		"/etc/nsswitch.conf": "hosts: files dns\n",
		"/etc/resolv.conf":   "",
	}
}

func (s *stage2) etc(ctx context.Context, log *slog.Logger) error {
	for p, c := range etcFiles(s.hostname) {
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func (s *stage2) network(ctx context.Context, log *slog.Logger) error {
	s.net = netup.NewState()
	go func() {
		for range s.net.Changed() {
			if err := s.net.WriteResolvConf(s.cfg.Network.DNS, "/etc/resolv.conf"); err != nil {
				log.Warn("resolv.conf", "err", err)
			}
			// A lease after the phase's wait (Wi-Fi out of reach at
			// first) brings the network up too.
			if s.net.FirstIP() != "none" {
				s.netUp.Store(true)
			}
		}
	}()
	err := netup.Up(s.ctx, log, s.cfg.Network, s.net, 60*time.Second, s.joinWiFi(log))
	if err == nil {
		s.net.WriteResolvConf(s.cfg.Network.DNS, "/etc/resolv.conf")
		s.netUp.Store(true)
	}
	return err
}

func (s *stage2) ntpServers() []string {
	if len(s.cfg.Time.NTP) > 0 {
		return s.cfg.Time.NTP
	}
	if s.net != nil {
		return s.net.NTP()
	}
	return nil
}

func (s *stage2) timeSync(ctx context.Context, log *slog.Logger) error {
	go clock.Keep(s.ctx, log, s.ntpServers, 15*time.Minute)
	servers := s.ntpServers()
	if len(servers) == 0 {
		log.Info("no NTP servers configured or offered by DHCP; keeping the clock floor")
		return nil
	}
	// Three rounds, none begun after a minute: a round may take long when
	// the servers' names do not resolve (the resolver has no deadline),
	// and the phase's time limit feeds the watchdog.
	var err error
	for deadline, i := time.Now().Add(time.Minute), 0; i < 3 && (i == 0 || time.Now().Before(deadline)); i++ {
		var server string
		var offset time.Duration
		if server, offset, err = clock.Sync(servers); err == nil {
			log.Info("time synchronised", "server", server, "offset", offset.Round(time.Millisecond), "now", time.Now().UTC().Format(time.RFC3339))
			return clock.Save()
		}
		time.Sleep(2 * time.Second)
	}
	return err
}
