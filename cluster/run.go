//go:build cairnd

// Package cluster is cairnd, the device's cluster binary: one multicall
// program that runs the Kubernetes server or agent of a node, and the
// upstream components (kube-apiserver, kube-controller-manager,
// kube-scheduler, kubectl) as its subcommands or by argv[0].
package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/cairn-os/cairn/boot"
	"github.com/cairn-os/cairn/cluster/components"
	"github.com/cairn-os/cairn/cluster/datastore"
	"github.com/cairn-os/cairn/cluster/identity"
	"github.com/cairn-os/cairn/cluster/server"
	"github.com/cairn-os/cairn/cluster/supervise"
	"github.com/cairn-os/cairn/configs"
)

// Main is cairnd's whole program: argv[0] or the first argument names what
// to run. It returns the exit code.
func Main(ctx context.Context, argv []string, out io.Writer) int {
	// init starts cairnd with the kernel's bare environment; containerd finds
	// its shim and runc, and the kubelet mount, through PATH.
	if os.Getenv("PATH") == "" {
		os.Setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	name, args := filepath.Base(argv[0]), argv[1:]
	if name == "cairnd" && len(args) > 0 {
		name, args = args[0], args[1:]
	}
	if code, ok := components.Run(ctx, name, args); ok {
		return code
	}
	// init stamps each line with the time; the level and message suffice here.
	log := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	if supervise.DefaultGOGC() && (name == "server" || name == "agent") {
		debug.SetGCPercent(supervise.GOGC) // as for its components
	}
	var err error
	switch name {
	case "server":
		err = runServer(ctx, log)
	case "agent":
		err = runAgent(ctx, log)
	default:
		fmt.Fprintf(out, "cairnd: unknown command %q; use server, agent or one of %s\n", name, strings.Join(components.Names(), ", "))
		return 2
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		log.Error("cairnd "+name+" failed", "err", err)
		return 1
	}
	return 0
}

func runServer(ctx context.Context, log *slog.Logger) error {
	cfg, _, err := configs.Load(boot.EffectiveConfig)
	if err != nil {
		return err
	}
	if cfg.Cluster == nil || cfg.Cluster.Role != "server" {
		return errors.New("the config does not make this node a server (cluster.role: server)")
	}
	bundle, err := identity.Load(boot.ClusterDir)
	if err != nil {
		return fmt.Errorf("%w (the image carries no server secrets: build it with cluster.role: server)", err)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	s := &server.Server{
		Config: cfg, Bundle: bundle, Dir: server.DefaultDir, Self: self,
		Datastore: datastore.Start, Log: log, LogDir: server.LogDir,
	}
	if supervise.Upstream("etcd") != "" {
		s.Datastore = datastore.UpstreamEtcd(log, server.LogDir)
	}
	return s.Run(ctx)
}
