package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-os/cairn/boards"
	"github.com/cairn-os/cairn/cluster/manifest"
	"github.com/cairn-os/cairn/configs"
	"github.com/cairn-os/cairn/image/apt"
	"github.com/cairn-os/cairn/image/build"
	"github.com/cairn-os/cairn/image/oci"
	"github.com/cairn-os/cairn/image/registry"
	"github.com/cairn-os/cairn/internal/progress"
	clog "github.com/containerd/log"
	"github.com/spf13/cobra"
)

func buildCmd(logger func() *slog.Logger) *cobra.Command {
	var board, config, output, binDir, cache, debs, upstream string
	var offline bool
	c := &cobra.Command{
		Use:   "build",
		Short: "Build a bootable disk image for a board from a node config",
		Long: `Build a bootable disk image: A/B slots with the kernel, initramfs and a
read-only root, ready to flash (dd, or cairn vm to boot it in QEMU). The data
partition is created on first boot in the rest of the card or disk.

SOURCE_DATE_EPOCH fixes every timestamp (and the device's clock floor);
without it the build uses the start of the current UTC day, so builds on one
day are bit-for-bit identical.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := logger()
			p, err := boards.Get(board)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			raw, name := configs.Default(), configs.DefaultName
			if config != "" {
				if raw, err = configs.ReadFile(config); err != nil {
					return &ExitError{Code: 2, Err: fmt.Errorf("read config: %w", err)}
				}
				name = config
			}
			cfg, warns, err := configs.Parse(name, raw)
			for _, w := range warns {
				log.Warn(w.String())
			}
			if err != nil {
				return err
			}
			if upstream != "" && cfg.Cluster == nil {
				return &ExitError{Code: 2, Err: fmt.Errorf("--upstream: %s has no cluster: section, so nothing would run the programs; give a server or agent config", name)}
			}
			if output == "" {
				output = filepath.Join("out", p.Name+".img")
			}
			if err := os.MkdirAll(filepath.Dir(output), 0o755); err != nil {
				return fmt.Errorf("%w: %v", build.ErrOutput, err)
			}
			epoch, err := sourceDateEpoch()
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			if binDir == "" {
				binDir = defaultBinDir()
			}
			pulled, err := os.MkdirTemp("", "cairn-pulled-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(pulled)
			clog.SetLevel("warn") // the registry client's info lines are noise here
			puller := &registry.Puller{
				Cache: filepath.Join(cache, "images"), Offline: offline, Hosts: registry.DefaultHosts(),
				DockerConfig: registry.DefaultDockerConfig(), Progress: cmd.ErrOrStderr(), Log: log,
			}
			images, err := clusterImages(cmd.Context(), cfg, name, p.Arch, puller, pulled, epoch)
			if err != nil {
				return err
			}
			manifests, err := clusterManifests(cfg, name)
			if err != nil {
				return err
			}
			start := time.Now()
			ci, err := clusterSecrets(log, cfg, epoch)
			if err != nil {
				return err
			}
			var clusterFiles map[string][]byte
			if ci != nil {
				clusterFiles = ci.files
			}
			res, err := build.Build(cmd.Context(), build.Options{
				Board: p, Config: cfg, ConfigRaw: raw, ClusterFiles: clusterFiles, Images: images, Manifests: manifests, Upstream: upstream, Output: output, BinDir: binDir,
				Cache: cache, Offline: offline, Debs: debs, Epoch: epoch, Version: Version,
				Log: log, Progress: cmd.ErrOrStderr(),
			})
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), summary(res, p, time.Since(start)))
			kc, err := ci.writeKubeconfig(cfg, p, output)
			if err != nil {
				return fmt.Errorf("%w: kubeconfig: %v", build.ErrOutput, err)
			}
			if kc != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: admin kubeconfig for cluster %s\n", kc, cfg.Cluster.ClusterName())
			}
			if filepath.Base(kc) != "kubeconfig" && kc != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "%s is another cluster's and was left as it was\n", filepath.Join(filepath.Dir(kc), "kubeconfig"))
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVarP(&board, "board", "b", "qemu-arm64", "board profile (see `cairn boards`)")
	f.StringVarP(&config, "config", "c", "", "node config file (default: the built-in default)")
	f.StringVarP(&output, "output", "o", "", "image file to write (default: out/BOARD.img)")
	f.StringVar(&binDir, "bin-dir", "", "folder with linux-ARCH/init and linux-ARCH/cairnd (default: beside the cairn binary)")
	f.StringVar(&cache, "cache", apt.DefaultCache(), "package cache folder")
	f.BoolVar(&offline, "offline", false, "use only cached indexes and packages; no network")
	f.StringVar(&debs, "debs", "", "build from this folder of .deb files instead of repositories")
	f.StringVar(&upstream, "upstream", "", "folder of upstream programs (kube-apiserver, kubelet, containerd, etcd, ...) that cairnd runs instead of its own, the kubeadm way; for comparisons (make bench)")
	return c
}

func sourceDateEpoch() (time.Time, error) {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a count of seconds since 1970", s)
		}
		return time.Unix(n, 0).UTC(), nil
	}
	return time.Now().UTC().Truncate(24 * time.Hour), nil
}

// defaultBinDir is the folder of the running cairn binary when it holds the
// device binaries (make build puts them side by side), else ./bin.
func defaultBinDir() string {
	if exe, err := os.Executable(); err == nil {
		dir := filepath.Dir(exe)
		if m, _ := filepath.Glob(filepath.Join(dir, "linux-*", "init")); len(m) > 0 {
			return dir
		}
	}
	return "bin"
}

func summary(r *build.Result, p *boards.Profile, took time.Duration) string {
	var parts []string
	for _, pt := range r.Partitions {
		pct := 0
		if pt.Size > 0 {
			pct = int(100 * pt.Used / pt.Size)
		}
		parts = append(parts, fmt.Sprintf("%d %s %s (%d%% used)", pt.Num, pt.Name, progress.Size(pt.Size), pct))
	}
	return fmt.Sprintf("%s: %s %s image for %s, kernel %s, in %.1fs; partitions: %s; data: created on first boot in the rest of the disk",
		r.Output, progress.Size(r.Size), p.Layout.Table, p.Name, r.Kernel, took.Seconds(), strings.Join(parts, ", "))
}

// clusterImages checks the config's cluster.images: archives (relative to
// the config file) are inspected, registry references are pulled into the
// cache and packed as archives in dir. It returns the archives' paths. A
// problem names the config line.
func clusterImages(ctx context.Context, cfg *configs.Config, configFile, arch string, puller *registry.Puller, dir string, mtime time.Time) ([]string, error) {
	if cfg.Cluster == nil {
		return nil, nil
	}
	return clusterInputs(cfg, configFile, "cluster.images", cfg.Cluster.Images, func(file, entry string) (string, string) {
		if isReference(file, entry) {
			archive, err := pull(ctx, puller, entry, arch, dir, mtime)
			if err != nil {
				return "", err.Error()
			}
			return archive, ""
		}
		info, err := oci.Inspect(file)
		switch {
		case err != nil:
			return "", fmt.Sprintf("%v; give an OCI layout or docker save archive (.tar)", err)
		case len(info.Archs) > 0 && !slices.Contains(info.Archs, arch):
			return "", fmt.Sprintf("%s is for %s, but the board is %s; build or pull the image for %s", entry, strings.Join(info.Archs, ", "), arch, arch)
		}
		return file, ""
	})
}

// isReference tells an images: entry that names a registry image from an
// archive: a file that exists, an entry ending in .tar, or a path starting
// with / or . is an archive.
func isReference(file, entry string) bool {
	if _, err := os.Stat(file); err == nil {
		return false
	}
	return !strings.HasSuffix(entry, ".tar") && !strings.HasPrefix(entry, "/") && !strings.HasPrefix(entry, ".")
}

// pull fetches ref for arch and writes it as an archive in dir.
func pull(ctx context.Context, p *registry.Puller, ref, arch, dir string, mtime time.Time) (string, error) {
	start := time.Now()
	img, err := p.Pull(ctx, ref, arch)
	if err != nil {
		return "", err
	}
	base := img.Name[strings.LastIndex(img.Name, "/")+1:]
	base = strings.NewReplacer(":", "-", "@", "-").Replace(base)
	f, err := os.CreateTemp(dir, "*-"+base+".tar")
	if err != nil {
		return "", err
	}
	err = p.WriteArchive(f, img, mtime)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("%s: writing its archive: %w", ref, err)
	}
	p.Log.Info("image pulled", "ref", img.Name, "digest", img.Manifest.Digest, "cached", img.Cached, "took", time.Since(start).Round(time.Millisecond))
	return f.Name(), nil
}

// clusterManifests checks that the config's cluster.manifests parse as
// Kubernetes objects and returns their paths.
func clusterManifests(cfg *configs.Config, configFile string) ([]string, error) {
	if cfg.Cluster == nil || cfg.Cluster.Role != "server" {
		return nil, nil
	}
	return clusterInputs(cfg, configFile, "cluster.manifests", cfg.Cluster.Manifests, func(file, entry string) (string, string) {
		data, err := os.ReadFile(file)
		if err == nil {
			_, err = manifest.Parse(data)
		}
		if err != nil {
			return "", fmt.Sprintf("%s: %v", entry, err)
		}
		return file, ""
	})
}

// clusterInputs resolves a list of files relative to the config and
// checks each; check returns the file to use (it may make one) or a
// problem. All problems are reported together, each with its config line.
func clusterInputs(cfg *configs.Config, configFile, field string, entries []string, check func(file, entry string) (use, problem string)) ([]string, error) {
	var out []string
	var probs configs.Problems
	for i, entry := range entries {
		file := entry
		if !filepath.IsAbs(file) {
			file = filepath.Join(filepath.Dir(configFile), file)
		}
		use, msg := check(file, entry)
		if msg != "" {
			probs = append(probs, cfg.Problem(fmt.Sprintf("%s[%d]", field, i), msg))
			continue
		}
		out = append(out, use)
	}
	if len(probs) > 0 {
		return nil, probs
	}
	return out, nil
}
