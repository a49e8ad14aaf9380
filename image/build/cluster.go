package build

import (
	"bytes"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/cairn-os/cairn/boot"
	"github.com/cairn-os/cairn/image/fstree"
	"github.com/cairn-os/cairn/image/oci"
)

// What a cluster node takes from Debian: runc, the CNI plugins, iptables
// (nft backend, for kube-proxy and the CNI plugins) and mount (the kubelet
// mounts tmpfs for secret and token volumes).
var clusterPackages = []string{"runc", "containernetworking-plugins", "iptables", "mount", "netbase"}

// clusterFiles are the files taken from them; a pattern is matched in each
// unpacked package (iptables loads its extensions with dlopen).
var clusterFiles = []string{
	"usr/sbin/runc",
	"usr/lib/cni/bridge", "usr/lib/cni/host-local", "usr/lib/cni/loopback", "usr/lib/cni/portmap",
	"usr/sbin/xtables-nft-multi", "usr/lib/*/xtables/*.so",
	"bin/mount", "bin/umount",
	"etc/protocols", "etc/services",
}

// iptablesNames are the iptables programs, all xtables-nft-multi.
var iptablesNames = []string{"iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore"}

// multicallNames are the programs cairnd is when started by that name
// (cluster/components).
var multicallNames = []string{"containerd", "ctr", "kubectl", "kubelet", "kube-proxy",
	"kube-apiserver", "kube-controller-manager", "kube-scheduler"}

// clusterModules are what containerd (overlay), the pod network (bridge,
// veth, br_netfilter, vxlan) and kube-proxy with iptables-nft need.
var clusterModules = []string{
	"overlay", "bridge", "br_netfilter", "veth", "vxlan",
	"nf_conntrack", "nf_nat", "nf_tables", "nft_compat", "nft_chain_nat", "nft_ct", "nft_masq", "nft_nat",
	"nft_redir", "nft_reject_inet", "nft_fib_inet",
	"xt_conntrack", "xt_comment", "xt_mark", "xt_MASQUERADE", "xt_addrtype", "xt_nat", "xt_statistic",
	"xt_multiport", "xt_tcpudp", "xt_physdev", "xt_set", "xt_REDIRECT", "xt_recent", "ipt_REJECT", "ip6t_REJECT",
}

func (b *builder) isCluster() bool { return b.o.Config.Cluster != nil }

// expandFiles resolves clusterFiles' patterns against the unpacked packages.
func expandFiles(roots []string, files []string) []string {
	var out []string
	for _, f := range files {
		if !hasMeta(f) {
			out = append(out, f)
			continue
		}
		seen := map[string]bool{}
		for _, r := range roots {
			m, _ := filepath.Glob(filepath.Join(r, f))
			for _, full := range m {
				rel, _ := filepath.Rel(r, full)
				if !seen[rel] {
					seen[rel] = true
					out = append(out, rel)
				}
			}
		}
	}
	return out
}

func hasMeta(p string) bool { return strings.ContainsAny(p, "*?[") }

// shimName is containerd's runc shim, which it finds in PATH.
const shimName = "containerd-shim-runc-v2"

// addClusterTree adds cairnd, the runc shim, the multicall and iptables
// links and the pause image.
func (b *builder) addClusterTree(t *fstree.Tree) error {
	for _, bin := range []string{"cairnd", shimName} {
		if err := t.AddFile(path.Join("usr/bin", bin), 0o755, b.binary(bin)); err != nil {
			return err
		}
	}
	for _, n := range multicallNames {
		if err := t.Symlink(path.Join("usr/bin", n), "cairnd"); err != nil {
			return err
		}
	}
	for _, n := range iptablesNames {
		if err := t.Symlink(path.Join("usr/sbin", n), "xtables-nft-multi"); err != nil {
			return err
		}
	}
	pause, err := os.ReadFile(b.binary("pause"))
	if err != nil {
		return fmt.Errorf("%w: build the device binaries first (make cluster-%s)", err, b.arch)
	}
	var buf bytes.Buffer
	err = oci.Write(&buf, oci.Image{
		Ref: boot.PauseImage, Arch: b.arch, Entrypoint: []string{"/pause"},
		Files: []oci.File{{Path: "/pause", Mode: 0o755, Data: pause}}, Created: b.o.Epoch.UTC().Truncate(time.Second),
	})
	if err != nil {
		return err
	}
	if err := t.AddData(path.Join(boot.ImagesDir, "pause.tar"), 0o644, buf.Bytes()); err != nil {
		return err
	}
	for i, img := range b.o.Images {
		name := fmt.Sprintf("user-%02d-%s", i, filepath.Base(img))
		if !strings.HasSuffix(name, ".tar") {
			name += ".tar"
		}
		if err := t.AddFile(path.Join(boot.ImagesDir, name), 0o644, img); err != nil {
			return err
		}
	}
	if b.o.Upstream != "" {
		progs, err := os.ReadDir(b.o.Upstream)
		if err != nil {
			return fmt.Errorf("upstream programs: %w", err)
		}
		for _, p := range progs {
			file := filepath.Join(b.o.Upstream, p.Name())
			if st, err := os.Stat(file); err != nil || !st.Mode().IsRegular() { // a link to a program counts
				continue
			}
			if err := t.AddFile(path.Join(boot.UpstreamDir, p.Name()), 0o755, file); err != nil {
				return err
			}
		}
	}
	// Numbered, so the server applies them in the config's order.
	for i, m := range b.o.Manifests {
		name := fmt.Sprintf("%02d-%s", i, filepath.Base(m))
		if err := t.AddFile(path.Join(boot.ManifestsDir, name), 0o644, m); err != nil {
			return err
		}
	}
	return nil
}
