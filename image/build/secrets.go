package build

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cairn-os/cairn/boards"
	"github.com/cairn-os/cairn/cluster/identity"
	"github.com/cairn-os/cairn/configs"
	"github.com/cairn-os/cairn/internal/atomicfile"
)

// secrets is what a build needs from the cluster's secrets.
type secrets struct {
	bundle *identity.Bundle
	files  map[string][]byte // baked into the image
	epoch  time.Time
}

// clusterSecrets loads (or, on a cluster's first build, makes) the secrets
// bundle and picks what the image carries: a server all of it (with the
// kubelet-serving CA, which only servers use), an agent only its join token.
//
// Certificates start before epoch (the image's build time, which is the
// device's clock floor), so a board without a clock trusts them at boot.
func clusterSecrets(log *slog.Logger, cfg *configs.Config, epoch time.Time) (*secrets, error) {
	c := cfg.Cluster
	if c == nil {
		return nil, nil
	}
	dir, err := identity.DefaultDir(c.ClusterName())
	if err != nil {
		return nil, err
	}
	if c.Role == "agent" && c.Token != "" {
		// The cluster's secrets live elsewhere; the token is all an agent needs.
		return &secrets{files: map[string][]byte{identity.FileToken: []byte(c.Token + "\n")}}, nil
	}
	b, created, err := identity.LoadOrCreate(dir, earliest(epoch, time.Now()))
	if err != nil {
		return nil, err
	}
	if created {
		log.Info("made new secrets for the cluster; back up this folder", "cluster", c.ClusterName(), "dir", dir)
	} else {
		log.Info("using the cluster's secrets", "cluster", c.ClusterName(), "dir", dir)
	}
	if len(b.Added) > 0 {
		log.Info("added to the cluster's secrets what this cairn needs; back up this folder again", "dir", dir, "files", strings.Join(b.Added, ","))
	}
	if c.Token != "" && c.Token != b.Token() {
		pos := cfg.PosOf("cluster.token")
		return nil, fmt.Errorf("%w: %s:%d:%d: cluster.token is not the token of cluster %q (%s); remove it so the build uses the cluster's own",
			ErrInput, cfg.File, pos.Line, pos.Col, c.ClusterName(), filepath.Join(dir, identity.FileToken))
	}
	if c.Role == "agent" {
		return &secrets{bundle: b, files: map[string][]byte{identity.FileToken: []byte(b.Token() + "\n")}, epoch: epoch}, nil
	}
	files, err := b.Files()
	if err != nil {
		return nil, err
	}
	return &secrets{bundle: b, files: files, epoch: epoch}, nil
}

// WriteKubeconfig leaves the admin kubeconfig of a server image next to
// it, as kubeconfig, or NAME.kubeconfig when kubeconfig there is another
// cluster's. It returns the file written, or "" for other images.
func (o *Options) WriteKubeconfig() (string, error) {
	ci, cfg, board, output := o.secrets, o.Config, o.Board, o.Output
	if ci == nil || ci.bundle == nil || cfg.Cluster.Role != "server" {
		return "", nil
	}
	kc, err := ci.bundle.AdminKubeconfig(cfg.Cluster.ClusterName(), "https://"+net.JoinHostPort(serverHost(cfg, board), "6443"), earliest(ci.epoch, time.Now()))
	if err != nil {
		return "", err
	}
	path := filepath.Join(filepath.Dir(output), "kubeconfig")
	if old, err := os.ReadFile(path); err == nil && !ci.owns(old) {
		// Another cluster's server was built into this folder: keep its
		// kubeconfig, and name this one after its cluster.
		path = filepath.Join(filepath.Dir(output), cfg.Cluster.ClusterName()+".kubeconfig")
	}
	if err := atomicfile.Write(path, kc, 0o600); err != nil {
		return "", err
	}
	return path, nil
}

// owns says whether a kubeconfig is for this image's cluster (it trusts
// the cluster's server CA).
func (ci *secrets) owns(kubeconfig []byte) bool {
	kc, err := identity.ParseKubeconfig(kubeconfig)
	return err == nil && bytes.Equal(kc.CAPEM, ci.bundle.ServerCA.CertPEM)
}

// serverHost is where kubectl on this machine reaches the server: for a
// QEMU board, the port cairn vm forwards (its addresses are on QEMU's
// networks, which this machine does not reach); else the node's first
// static address, else its host name.
func serverHost(cfg *configs.Config, board *boards.Profile) string {
	if strings.HasPrefix(board.Name, "qemu-") {
		return "127.0.0.1"
	}
	for _, i := range cfg.Network.Interfaces {
		for _, a := range i.Addresses {
			return a.Addr().String()
		}
	}
	if cfg.Hostname == "" {
		return "127.0.0.1"
	}
	return cfg.Hostname
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
