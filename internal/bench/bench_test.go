// Package bench prints the figures the README quotes: warm build time and
// peak memory per board, image and partition fill, and boot to ready under
// QEMU. It asserts nothing about timings; run it with `make bench`.
package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-os/cairn/boards"
	"github.com/cairn-os/cairn/cluster/agent"
	"github.com/cairn-os/cairn/internal/qemu"
)

// cairnBin is the CLI make built.
func cairnBin(b *testing.B) string {
	p, _ := filepath.Abs("../../bin/cairn")
	if _, err := os.Stat(p); err != nil {
		b.Fatalf("%s is missing: run `make build` (make bench does)", p)
	}
	return p
}

func build(b *testing.B, board, out string) (time.Duration, int64, string) {
	cmd := exec.Command(cairnBin(b), "build", "--board", board, "--output", out, "--bin-dir", filepath.Dir(cairnBin(b)))
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=1780000000")
	start := time.Now()
	outb, err := cmd.CombinedOutput()
	took := time.Since(start)
	if err != nil {
		b.Fatalf("build %s: %v\n%s", board, err, outb)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	lines := strings.Split(strings.TrimSpace(string(outb)), "\n")
	return took, ru.Maxrss << 10, lines[len(lines)-1]
}

func BenchmarkWarmBuild(b *testing.B) {
	dir := b.TempDir()
	for _, board := range []string{"qemu-arm64", "rpi4"} {
		out := filepath.Join(dir, board+".img")
		build(b, board, out) // warm the cache
		took, rss, summary := build(b, board, out)
		fmt.Printf("warm build %-10s %6.1f s  peak RSS %4d MiB\n  %s\n", board, took.Seconds(), rss>>20, summary)
	}
}

func BenchmarkBootToReady(b *testing.B) {
	dir := b.TempDir()
	img := filepath.Join(dir, "qemu-arm64.img")
	build(b, "qemu-arm64", img)
	if err := os.Truncate(img, 2<<30); err != nil {
		b.Fatal(err)
	}
	board, _ := boards.Get("qemu-arm64")
	for _, what := range []string{"first boot (formats data)", "second boot"} {
		vm, err := qemu.Start(qemu.Options{Board: board, Image: img})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := vm.WaitFor("cairn: ready", 0, 10*time.Minute); err != nil {
			vm.Kill()
			b.Fatal(err)
		}
		fmt.Printf("boot to ready, qemu-arm64 %s, accel %s: %.1f s\n", what, qemu.Accel(board.QEMU.Binary), vm.Since().Seconds())
		vm.Kill()

	}
}

// BenchmarkServer prints cairnd's size per architecture and in the root
// squashfs, the time a server image takes from power-on to a ready API
// under emulation, and the memory of cairnd's processes five minutes after.
func BenchmarkServer(b *testing.B) {
	for _, arch := range []string{"arm64", "amd64"} {
		if st, err := os.Stat(filepath.Join(filepath.Dir(cairnBin(b)), "linux-"+arch, "cairnd")); err == nil {
			fmt.Printf("cairnd linux/%s: %.1f MiB\n", arch, float64(st.Size())/(1<<20))
		}
	}
	dir := b.TempDir()
	b.Setenv("CAIRN_CLUSTERS", dir)
	vm, out := bootServer(b, dir, "server")
	defer vm.Kill()
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "root filesystem") {
			fmt.Println(strings.TrimSpace(l))
		}
	}
	board, _ := boards.Get("qemu-arm64")
	if _, err := vm.WaitFor(`msg="apiserver ready"`, 0, 30*time.Minute); err != nil {
		b.Fatal(err)
	}
	fmt.Printf("server power-on to API ready, qemu-arm64, accel %s, first boot: %.0f s\n", qemu.Accel(board.QEMU.Binary), vm.Since().Seconds())
	if _, err := vm.WaitFor(`msg="node ready"`, 0, 30*time.Minute); err != nil {
		b.Fatal(err)
	}
	fmt.Printf("server power-on to node Ready: %.0f s\n", vm.Since().Seconds())
	time.Sleep(5 * time.Minute)
	pss, node, rss, _ := memory(b, vm)
	fmt.Printf("server memory 5 min after node Ready, no workloads: PSS %d MiB, of which the node part (containerd, kubelet, kube-proxy) %d MiB (RSS summed %d MiB counts the shared binary once per process)\n", pss>>10, node>>10, rss>>10)
}

// bootServer builds a server image with the debug console (cairn build
// with extra arguments) in dir and starts it; it returns the VM and the
// build's output.
func bootServer(b *testing.B, dir, name string, extra ...string) (*qemu.VM, string) {
	cfg := filepath.Join(dir, name+".yaml")
	os.WriteFile(cfg, []byte("apiVersion: cairn.dev/v1alpha1\nkind: Node\nhostname: bench\ncluster:\n  role: server\ndebug:\n  console: true\n"), 0o644)
	img := filepath.Join(dir, name+".img")
	args := append([]string{"build", "--board", "qemu-arm64", "--config", cfg, "--output", img, "--bin-dir", filepath.Dir(cairnBin(b))}, extra...)
	out, err := exec.Command(cairnBin(b), args...).CombinedOutput()
	if err != nil {
		b.Fatalf("build %s: %v\n%s", name, err, out)
	}
	if err := os.Truncate(img, 3<<30); err != nil {
		b.Fatal(err)
	}
	board, _ := boards.Get("qemu-arm64")
	vm, err := qemu.Start(qemu.Options{Board: board, Image: img})
	if err != nil {
		b.Fatal(err)
	}
	return vm, string(out)
}

// memory lists cairnd's processes, the shims and any upstream programs
// in a VM with the debug console, and sums their memory in KiB: all of
// them as PSS, the node part (containerd, kubelet, kube-proxy and the
// shims) as PSS, and all as RSS; server is the PSS of the "cairnd server"
// process itself.
func memory(b *testing.B, vm *qemu.VM) (pss, node, rss, server int) {
	ps, err := vm.Run("ps", time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	for _, f := range psLines(ps) {
		role := filepath.Base(f[3])
		switch {
		case role == "cairnd":
			if len(f) > 4 {
				role = f[4]
			}
		case role == "containerd-shim-runc-v2" || role == "etcd" || slices.Contains(upstreamPrograms, role):
		default:
			continue
		}
		var r, p int
		fmt.Sscan(f[1], &r)
		fmt.Sscan(f[2], &p)
		rss, pss = rss+r, pss+p
		if role == "server" {
			server = p
		}
		if slices.Contains([]string{"containerd", "kubelet", "kube-proxy", agent.NodeComponents, "containerd-shim-runc-v2"}, role) {
			node += p
		}
		fmt.Printf("  RSS %4d MiB  PSS %4d MiB  %s\n", r>>10, p>>10, strings.Join(f[3:], " "))
	}
	return pss, node, rss, server
}

// psLines splits the debug console's ps output into its rows' fields:
// pid rss pss exe [argv...].
func psLines(ps string) [][]string {
	var rows [][]string
	for _, l := range strings.Split(ps, "\n") {
		if f := strings.Fields(l); len(f) >= 4 {
			rows = append(rows, f)
		}
	}
	return rows
}

// BenchmarkAgent boots a server and an agent on one QEMU network and
// prints the agent's time from power-on to node Ready and its memory five
// minutes after.
func BenchmarkAgent(b *testing.B) {
	dir := b.TempDir()
	b.Setenv("CAIRN_CLUSTERS", dir)
	board, _ := boards.Get("qemu-arm64")
	lan := fmt.Sprintf("127.0.0.1:%d", 20000+os.Getpid()%20000)
	boot := func(name, mac, ip, cluster, lanOpt string) *qemu.VM {
		cfg := filepath.Join(dir, name+".yaml")
		os.WriteFile(cfg, []byte(fmt.Sprintf("apiVersion: cairn.dev/v1alpha1\nkind: Node\nhostname: %s\n"+
			"network:\n  interfaces:\n    - mac: %q\n      addresses: [%s/24]\n    - name: eth*\n"+
			"cluster:\n  name: bench\n%sdebug:\n  console: true\n", name, mac, ip, cluster)), 0o644)
		img := filepath.Join(dir, name+".img")
		cmd := exec.Command(cairnBin(b), "build", "--board", "qemu-arm64", "--config", cfg, "--output", img, "--bin-dir", filepath.Dir(cairnBin(b)))
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("build: %v\n%s", err, out)
		}
		if err := os.Truncate(img, 3<<30); err != nil {
			b.Fatal(err)
		}
		vm, err := qemu.Start(qemu.Options{Board: board, Image: img, LAN: lanOpt + "=" + lan, LANMAC: mac})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(vm.Kill)
		if _, err := vm.WaitFor(`msg="node ready"`, 0, 30*time.Minute); err != nil {
			b.Fatalf("%s: %v\n%s", name, err, vm.Output())
		}
		return vm
	}
	boot("server", "52:54:00:77:00:01", "192.168.77.1", "  role: server\n  nodeIP: 192.168.77.1\n", "listen")
	agent := boot("agent", "52:54:00:77:00:02", "192.168.77.2", "  role: agent\n  server: https://192.168.77.1:6443\n", "connect")
	fmt.Printf("agent power-on to node Ready (server already up), qemu-arm64, accel %s: %.0f s\n", qemu.Accel(board.QEMU.Binary), agent.Since().Seconds())
	time.Sleep(5 * time.Minute)
	pss, node, rss, _ := memory(b, agent)
	fmt.Printf("agent memory 5 min after node Ready, no workloads: PSS %d MiB, of which containerd, kubelet and kube-proxy %d MiB (RSS summed %d MiB)\n", pss>>10, node>>10, rss>>10)
}
