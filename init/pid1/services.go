package pid1

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/cairn-os/cairn/boot"
	"github.com/cairn-os/cairn/internal/reaper"
	"github.com/cairn-os/cairn/internal/retry"
	"github.com/cairn-os/cairn/internal/service"
)

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
	s.start(cairnd(s.cfg.Cluster.Role, log))
	go watchHealth(s.ctx, log.With("phase", "health"))
	return nil
}

// cairnd is the cluster service: restarted whenever it exits, its lines on
// the console (never waiting for it) and in /var/log/cairnd.log with the
// time, started and waited for through the reaper. Stopping it gives it
// longer than it gives its own components (20 s), then ends its whole
// session, so nothing it started outlives it into the unmount of /var.
func cairnd(role string, log *slog.Logger) *service.Service {
	lines := log.With("service", "cairnd")
	return &service.Service{
		Name: "cairnd",
		Command: func() *exec.Cmd {
			cmd := exec.Command(cairndPath, role)
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
			return cmd
		},
		Policy: service.Forever, LogFile: "/var/log/cairnd.log", Stamp: true,
		Line:  func(line string) { lines.Info(line) },
		Start: reaper.Start, Wait: reaper.Wait,
		Backoff: retry.Backoff{Min: time.Second, Max: time.Minute}, ResetAfter: time.Minute,
		Grace: 30 * time.Second, Log: log,
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
