package cli

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cairn-os/cairn/boards"
	"github.com/cairn-os/cairn/image/apt"
	"github.com/cairn-os/cairn/image/build"
	"github.com/cairn-os/cairn/internal/progress"
	"github.com/spf13/cobra"
)

func buildCmd(logger func() *slog.Logger) *cobra.Command {
	var board, config, output, binDir, cache, debs, upstream, bundle string
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
			if binDir == "" {
				binDir = defaultBinDir()
			}
			o, err := build.Plan(cmd.Context(), build.Request{Board: board, Config: config, Output: output, BinDir: binDir, Cache: cache,
				Offline: offline, Debs: debs, Upstream: upstream, Bundle: bundle, Version: Version, Log: logger(), Progress: cmd.ErrOrStderr()})
			if err != nil {
				return err
			}
			defer o.Close()
			start := time.Now()
			res, err := build.Image(cmd.Context(), *o)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), summary(res, o.Board, time.Since(start)))
			if bundle != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: update bundle of the same system, signed with the fleet's key (cairn upgrade %s --node HOST)\n", bundle, bundle)
			}
			return reportKubeconfig(cmd.OutOrStdout(), o)
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
	f.StringVar(&bundle, "bundle", "", "also write an update bundle of the same system, signed with the fleet's key (cairn keys generate)")
	f.StringVar(&upstream, "upstream", "", "folder of upstream programs (kube-apiserver, kubelet, containerd, etcd, ...) that cairnd runs instead of its own, the kubeadm way; for comparisons (make bench)")
	return c
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

// reportKubeconfig writes a server image's admin kubeconfig and says where.
func reportKubeconfig(w io.Writer, o *build.Options) error {
	kc, err := o.WriteKubeconfig()
	if err != nil || kc == "" {
		return err
	}
	fmt.Fprintf(w, "%s: admin kubeconfig for cluster %s\n", kc, o.Config.Cluster.ClusterName())
	if filepath.Base(kc) != "kubeconfig" {
		fmt.Fprintf(w, "%s is another cluster's and was left as it was\n", filepath.Join(filepath.Dir(kc), "kubeconfig"))
	}
	return nil
}
