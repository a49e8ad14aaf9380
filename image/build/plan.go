package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/cairn-os/cairn/boards"
	"github.com/cairn-os/cairn/configs"
	"github.com/cairn-os/cairn/image/apt"
	"github.com/cairn-os/cairn/image/registry"
	clog "github.com/containerd/log"
)

// ErrInput is wrapped by errors about what the user asked for (a board, a
// flag, SOURCE_DATE_EPOCH); config problems wrap configs.ErrInvalid.
var ErrInput = errors.New("bad input")

// Request is what a user asks of a build, in the terms of cairn build's
// flags; Plan resolves it into Options.
type Request struct {
	Board    string // default qemu-arm64
	Config   string // config file; empty for the built-in default
	Output   string // default out/BOARD.img
	BinDir   string // the device binaries (linux-ARCH/...)
	Cache    string // default apt.DefaultCache()
	Offline  bool
	Debs     string
	Upstream string
	Bundle   string // update bundle to write too; "" for none
	Version  string
	Log      *slog.Logger
	Progress io.Writer
}

// Plan resolves a request: the board, the config, SOURCE_DATE_EPOCH, the
// cluster's secrets (made on its first build), its container images
// (registry references pulled) and manifests, each checked. Close the
// Options it returns when the build is done.
func Plan(ctx context.Context, r Request) (*Options, error) {
	if r.Log == nil {
		r.Log = slog.New(slog.DiscardHandler)
	}
	if r.Cache == "" {
		r.Cache = apt.DefaultCache()
	}
	if r.Board == "" {
		r.Board = "qemu-arm64"
	}
	board, err := boards.Get(r.Board)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInput, err)
	}
	o := &Options{Board: board, Upstream: r.Upstream, Output: r.Output, BinDir: r.BinDir, Cache: r.Cache, Offline: r.Offline,
		Debs: r.Debs, HostRoot: "/", Version: r.Version, Log: r.Log, Progress: r.Progress, Bundle: r.Bundle}
	if err := o.config(r); err != nil {
		return nil, err
	}
	if o.Output == "" {
		o.Output = filepath.Join("out", board.Name+".img")
	}
	if err := os.MkdirAll(filepath.Dir(o.Output), 0o755); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrOutput, err)
	}
	if o.Epoch, err = sourceDateEpoch(); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			o.Close()
		}
	}()
	if err := o.clusterInputs(ctx); err != nil {
		return nil, err
	}
	if err := o.fleetInputs(r.Bundle); err != nil {
		return nil, err
	}
	ok = true
	return o, nil
}

// config reads and checks the config file (or the built-in default).
func (o *Options) config(r Request) error {
	raw, name := configs.Default(), configs.DefaultName
	if r.Config != "" {
		var err error
		if raw, err = configs.ReadFile(r.Config); err != nil {
			return fmt.Errorf("%w: read config: %w", ErrInput, err)
		}
		name = r.Config
	}
	cfg, warns, err := configs.Parse(name, raw)
	for _, w := range warns {
		o.Log.Warn(w.String())
	}
	if err != nil {
		return err
	}
	if r.Upstream != "" && cfg.Cluster == nil {
		return fmt.Errorf("%w: --upstream: %s has no cluster: section, so nothing would run the programs; give a server or agent config", ErrInput, name)
	}
	o.Config, o.ConfigRaw, o.configFile = cfg, raw, name
	return nil
}

// clusterInputs pulls and checks the images, checks the manifests and
// loads (or makes) the cluster's secrets.
func (o *Options) clusterInputs(ctx context.Context) error {
	if o.Config.Cluster == nil {
		return nil
	}
	var err error
	if o.scratch, err = os.MkdirTemp("", "cairn-pulled-"); err != nil {
		return err
	}
	clog.SetLevel("warn") // the registry client's info lines are noise here
	puller := &registry.Puller{
		Cache: filepath.Join(o.Cache, "images"), Offline: o.Offline, Hosts: registry.DefaultHosts(),
		DockerConfig: registry.DefaultDockerConfig(), Progress: o.Progress, Log: o.Log,
	}
	if o.Images, err = o.clusterImages(ctx, puller); err != nil {
		return err
	}
	if o.Manifests, err = o.clusterManifests(); err != nil {
		return err
	}
	if o.secrets, err = clusterSecrets(o.Log, o.Config, o.Epoch); err != nil {
		return err
	}
	if o.secrets != nil {
		o.ClusterFiles = o.secrets.files
	}
	return nil
}

// Close removes what Plan made for the build (pulled images).
func (o *Options) Close() error {
	if o.scratch == "" {
		return nil
	}
	return os.RemoveAll(o.scratch)
}

// sourceDateEpoch is SOURCE_DATE_EPOCH, else the start of today (UTC), so
// that same-day builds are identical.
func sourceDateEpoch() (time.Time, error) {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return time.Time{}, fmt.Errorf("%w: SOURCE_DATE_EPOCH=%q is not a count of seconds since 1970", ErrInput, s)
		}
		return time.Unix(n, 0).UTC(), nil
	}
	return time.Now().UTC().Truncate(24 * time.Hour), nil
}
