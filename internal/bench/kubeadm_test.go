package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairn-os/cairn/image/apt"
	"github.com/cairn-os/cairn/image/deb"
	"github.com/cairn-os/cairn/internal/qemu"
)

// upstreamPrograms are what make upstream builds: the Kubernetes release
// cairnd links, as separate programs, and containerd on its own.
var upstreamPrograms = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "containerd"}

// BenchmarkKubeadmWay runs one server VM the cairnd way (one multicall
// binary, kine on SQLite) and one the kubeadm way (the same release as
// separate upstream programs, containerd on its own, etcd from Debian),
// one after the other on the same emulated machine, and prints each one's
// time from power-on to a ready API and node, and its memory five minutes
// after.
func BenchmarkKubeadmWay(b *testing.B) {
	dir := b.TempDir()
	b.Setenv("CAIRN_CLUSTERS", dir)
	up := filepath.Join(dir, "upstream")
	os.Mkdir(up, 0o755)
	built := filepath.Join(filepath.Dir(cairnBin(b)), "upstream-arm64")
	// Links: the build follows them, and the programs are 500 MB.
	for _, p := range upstreamPrograms {
		if _, err := os.Stat(filepath.Join(built, p)); err != nil {
			b.Fatalf("%v: run `make upstream` (make bench does)", err)
		}
		os.Symlink(filepath.Join(built, p), filepath.Join(up, p))
	}
	os.Symlink(debianEtcd(b, dir), filepath.Join(up, "etcd"))
	type result struct {
		api, node            time.Duration
		pss, nodePSS, cairnd int
	}
	run := func(name string, extra ...string) result {
		vm, _ := bootServer(b, dir, name, extra...)
		defer vm.Kill()
		var r result
		if _, err := vm.WaitFor(`msg="apiserver ready"`, 0, 30*time.Minute); err != nil {
			b.Fatalf("%s: %v\n%s", name, err, vm.Output())
		}
		r.api = vm.Since()
		if _, err := vm.WaitFor(`msg="node ready"`, 0, 30*time.Minute); err != nil {
			b.Fatalf("%s: %v\n%s", name, err, vm.Output())
		}
		r.node = vm.Since()
		time.Sleep(5 * time.Minute)
		fmt.Printf("%s, 5 min after node Ready:\n", name)
		r.pss, r.nodePSS, _, r.cairnd = memory(b, vm)
		return r
	}
	c := run("cairnd")
	k := run("kubeadm-way", "--upstream", up)
	fmt.Printf("server, qemu-arm64, accel %s, first boot       cairnd   kubeadm way\n", qemu.Accel("qemu-system-aarch64"))
	fmt.Printf("  power-on to API ready                      %5.0f s   %5.0f s\n", c.api.Seconds(), k.api.Seconds())
	fmt.Printf("  power-on to node Ready                     %5.0f s   %5.0f s\n", c.node.Seconds(), k.node.Seconds())
	fmt.Printf("  PSS, all processes                       %5d MiB %5d MiB\n", c.pss>>10, k.pss>>10)
	fmt.Printf("  of which the node (containerd, kubelet, kube-proxy, shims) %d MiB / %d MiB\n", c.nodePSS>>10, k.nodePSS>>10)
	fmt.Printf("  of which cairnd's own server process       %5d MiB %5d MiB (kine, DNS, join, manifests; in the kubeadm way it stands in for systemd and CoreDNS)\n", c.cairnd>>10, k.cairnd>>10)
	fmt.Printf("cairnd memory / kubeadm-way memory: %.0f%% (goal <= 60%%); without cairnd's server process in the kubeadm way: %.0f%%\n",
		100*float64(c.pss)/float64(k.pss), 100*float64(c.pss)/float64(k.pss-k.cairnd))
}

// debianEtcd fetches Debian's etcd-server for arm64 through the host's apt
// sources (into cairn's package cache) and returns its etcd program.
func debianEtcd(b *testing.B, dir string) string {
	ctx := context.Background()
	srcs, err := apt.HostSources("/")
	if err != nil {
		b.Fatal(err)
	}
	c := &apt.Client{Sources: srcs, Arch: "arm64", Cache: apt.DefaultCache()}
	ix, err := c.Index(ctx)
	if err != nil {
		b.Fatal(err)
	}
	p, ok := ix.Lookup("etcd-server")
	if !ok {
		b.Fatal("etcd-server is in none of the host's apt sources")
	}
	file, err := c.Fetch(ctx, p)
	if err != nil {
		b.Fatal(err)
	}
	dest := filepath.Join(dir, "etcd-server")
	if err := deb.Extract(file, dest); err != nil {
		b.Fatal(err)
	}
	fmt.Printf("etcd: Debian %s\n", p)
	return filepath.Join(dest, "usr", "bin", "etcd")
}
