package pid1

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cairn-os/cairn/boot"
	"github.com/cairn-os/cairn/configs"
	"github.com/cairn-os/cairn/init/clock"
	"github.com/cairn-os/cairn/init/netup"
	"github.com/cairn-os/cairn/internal/atomicfile"
	"github.com/cairn-os/cairn/internal/reaper"
	"github.com/cairn-os/cairn/internal/retry"
	"github.com/cairn-os/cairn/internal/service"
	"golang.org/x/sys/unix"
)

// stage2 is the running system's state.
type stage2 struct {
	cfg      *configs.Config
	info     boot.BuildInfo
	args     map[string]string
	hostname string
	net      *netup.State
	services []*running
	ctx      context.Context
}

// running is a service init started, and how to stop it.
type running struct {
	stop context.CancelFunc
	done chan struct{}
}

var lateMounts = []mnt{
	{"tmpfs", "/tmp", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777"},
	{"devpts", "/dev/pts", "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, "mode=0620,ptmxmode=0666"},
	{"tmpfs", "/dev/shm", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777"},
	{"cgroup2", "/sys/fs/cgroup", "cgroup2", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	{"tmpfs", "/run/cairn/etc", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=0755"},
}

func (s *stage2) phases() []Phase {
	return []Phase{
		{"mounts", s.mounts, Reboot},
		{"config", s.loadConfig, Reboot},
		{"clock", s.clockFloor, Continue},
		{"hostname", s.setHostname, Continue},
		{"modules", func(ctx context.Context, log *slog.Logger) error {
			return loadModules(log, "", append(s.info.Modules, s.cfg.Modules...))
		}, Continue},
		{"sysctl", s.sysctl, Continue},
		{"watchdog", s.watchdog, Continue},
		{"etc", s.etc, Continue},
		{"network", s.network, Continue},
		{"time", s.timeSync, Continue},
		{"files", s.files, Continue},
		{"services", s.startServices, Continue},
	}
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

// watchdog pets /dev/watchdog from a goroutine; if init hangs, the board resets.
func (s *stage2) watchdog(ctx context.Context, log *slog.Logger) error {
	f, err := os.OpenFile("/dev/watchdog", os.O_WRONLY, 0)
	if err != nil {
		log.Info("no hardware watchdog")
		return nil
	}
	go func() {
		for {
			f.Write([]byte{0})
			time.Sleep(10 * time.Second)
		}
	}()
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
		}
	}()
	err := netup.Up(s.ctx, log, s.cfg.Network, s.net, 60*time.Second)
	if err == nil {
		s.net.WriteResolvConf(s.cfg.Network.DNS, "/etc/resolv.conf")
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
	var err error
	for range 3 {
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

// cairndPath is the cluster binary; only images built with a cluster:
// section carry it.
const cairndPath = "/usr/bin/cairnd"

func (s *stage2) startServices(ctx context.Context, log *slog.Logger) error {
	if s.cfg.Cluster == nil {
		log.Info("the config has no cluster: section, so this node runs no Kubernetes; add cluster.role to make it a server or an agent")
		return nil
	}
	if _, err := os.Stat(cairndPath); err != nil {
		return fmt.Errorf("cluster.role %s needs cairnd, which this image lacks: build the image from a config with a cluster: section (a cairn.yaml on the card cannot add one)", s.cfg.Cluster.Role)
	}
	s.start(cairnd(s.cfg.Cluster.Role, log.With("service", "cairnd")))
	go watchHealth(s.ctx, log.With("phase", "health"))
	return nil
}

// cairnd is the cluster service: restarted whenever it exits, its lines on
// the console (never waiting for it) and in /var/log/cairnd.log with the
// time, started and waited for through the reaper.
func cairnd(role string, log *slog.Logger) *service.Service {
	return &service.Service{
		Name: "cairnd",
		Command: func() *exec.Cmd {
			cmd := exec.Command(cairndPath, role)
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
			return cmd
		},
		Policy: service.Forever, LogFile: "/var/log/cairnd.log", Stamp: true,
		Line:  func(line string) { log.Info(line) },
		Start: reaper.Start, Wait: reaper.Wait,
		Backoff: retry.Backoff{Min: time.Second, Max: time.Minute}, ResetAfter: time.Minute,
		Log: log,
	}
}

// start runs svc until shutdown stops it.
func (s *stage2) start(svc *service.Service) {
	ctx, stop := context.WithCancel(s.ctx)
	r := &running{stop: stop, done: make(chan struct{})}
	s.services = append(s.services, r)
	go func() {
		defer close(r.done)
		svc.Run(ctx)
	}()
}

// Stage2 runs in the root as PID 1 and never returns.
func Stage2() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := newLogger(console(), false)
	s := &stage2{ctx: ctx}
	// Ctrl-Alt-Del sends SIGINT to init instead of resetting at once.
	unix.Reboot(unix.LINUX_REBOOT_CMD_CAD_OFF)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGUSR1, unix.SIGUSR2, unix.SIGCHLD)
	if err := runPhases(ctx, log, s.phases()); err != nil {
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
	unix.Reboot(how)
	select {}
}

// watchHealth reports on the console when cairnd finds the cluster healthy
// and when it stops doing so (the A/B commit will wait for the first).
func watchHealth(ctx context.Context, log *slog.Logger) {
	healthy, last := false, ""
	for {
		what, ok := boot.ReadHealth()
		switch {
		case ok && (!healthy || what != last):
			log.Info("cluster healthy", "status", what)
		case !ok && healthy:
			log.Warn("cluster no longer healthy")
		}
		healthy, last = ok, what
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
	}
}
