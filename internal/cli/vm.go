package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cairn-os/cairn/boards"
	"github.com/cairn-os/cairn/boot"
	"github.com/cairn-os/cairn/image/inspect"
	"github.com/cairn-os/cairn/internal/qemu"
	"github.com/spf13/cobra"
)

func vmCmd(logger func() *slog.Logger) *cobra.Command {
	var board, grow string
	var forward []string
	var cpus int
	c := &cobra.Command{
		Use:   "vm IMAGE...",
		Short: "Boot images in QEMU: one with its serial console on this terminal, or several on one LAN",
		Long: `Boot an image in QEMU (software emulation unless KVM works here) with the
firmware its board needs, user-mode networking and the serial console on
stdin/stdout. The board is the one the image was built for. Like a real card,
the image is written to: the data partition is created in the space --grow
adds, and a reboot restarts the machine, as on a board (an update needs it).

A cluster server's API is forwarded to 127.0.0.1:6443, where the kubeconfig
the build wrote beside the image points (to a free port when another
program holds that one); once the API is ready, the command says the
kubectl line that reaches it. Quit with Ctrl-A X, or Ctrl-C.

Several images boot together, each with a second network card on one
virtual LAN (the Nth image's card has the MAC address 52:54:00:77:00:0N; give
it an address in its config, as configs/examples/lan-server.yaml and
lan-agent.yaml do), and each console line is prefixed with the image's name.
--forward applies to the first image, the API's forward to the first server.
Ctrl-C stops them all.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			size, err := parseSize(grow)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			if cpus < 1 || cpus > 64 {
				return &ExitError{Code: 2, Err: fmt.Errorf("--cpus %d: give 1 to 64 virtual CPUs per VM, or leave it out", cpus)}
			}
			var vms []*vmPlan
			api := false
			for i, img := range args {
				v, err := planVM(img, board)
				if err != nil {
					return &ExitError{Code: 2, Err: err}
				}
				if i == 0 {
					v.forward = forward
				}
				if v.info.Role == "server" && !api {
					api = true
					if i > 0 && forwardsAPI(forward) {
						return &ExitError{Code: 2, Err: fmt.Errorf("--forward of port %s goes to the first image, %s, but the server is %s, whose API cairn vm forwards there; leave that --forward out", apiPort, args[0], img)}
					}
					if v.forward, v.apiHost, err = forwardAPI(v.forward); err != nil {
						return err
					}
					v.kubeconfig = findKubeconfig(img, v.info.Cluster)
				}
				for _, o := range vms {
					if same(o.image, img) {
						return &ExitError{Code: 2, Err: fmt.Errorf("%s is given twice (as %s too); two VMs cannot boot one image: build or copy another", img, o.image)}
					}
				}
				vms = append(vms, v)
			}
			if len(vms) > 1 {
				if err := nameVMs(vms); err != nil {
					return &ExitError{Code: 2, Err: err}
				}
			}
			for _, v := range vms {
				if err := growImage(v.image, size); err != nil {
					return err
				}
			}
			if len(vms) == 1 {
				if err := vms[0].boot(cmd, logger(), qemu.Options{Console: cmd.OutOrStdout(), Stdin: true, SMP: cpus}); err != nil {
					return err
				}
				return waitVM(cmd.Context(), vms[0].vm)
			}
			return bootLAN(cmd, logger(), vms, cpus)
		},
	}
	c.Flags().StringVarP(&board, "board", "b", "", "board the images were built for (default: read from each image)")
	c.Flags().StringVar(&grow, "grow", "2G", "grow each image file to this size first (never shrinks)")
	c.Flags().StringSliceVar(&forward, "forward", nil, "forward host TCP ports to the (first) guest (8080 or 8080:80)")
	c.Flags().IntVar(&cpus, "cpus", 2, "virtual CPUs of each VM")
	return c
}

// vmPlan is one image to boot.
type vmPlan struct {
	image, name string
	info        boot.BuildInfo
	board       *boards.Profile
	forward     []string
	apiHost     string // this machine's port of a server's API
	kubeconfig  string // a server's admin kubeconfig, when the build wrote one
	vm          *qemu.VM
	console     *prefixWriter // on a LAN
}

// planVM finds the board of an image: the one it says it was built for,
// or --board for an image of another tool.
func planVM(img, board string) (*vmPlan, error) {
	info, err := inspect.BuildInfo(img)
	if err != nil && (board == "" || !errors.Is(err, inspect.ErrNotCairn)) {
		if board == "" && errors.Is(err, inspect.ErrNotCairn) {
			err = fmt.Errorf("%w; if it is an image of another tool, name its board with --board", err)
		}
		return nil, err
	}
	if board == "" {
		board = info.Board
	} else if info.Board != "" && info.Board != board {
		return nil, fmt.Errorf("%s was built for board %s, not %s; leave --board out", img, info.Board, board)
	}
	p, err := boards.Get(board)
	if err != nil {
		return nil, err
	}
	if p.QEMU == nil {
		return nil, fmt.Errorf("%s is for board %s, which QEMU cannot boot; flash it, or build for qemu-arm64 or qemu-amd64 to use cairn vm", img, p.Name)
	}
	return &vmPlan{image: img, info: info, board: p}, nil
}

// nameVMs names each VM after its image file (server.img: server) and
// checks that each can join a LAN.
func nameVMs(vms []*vmPlan) error {
	seen := map[string]bool{}
	for i, v := range vms {
		if v.board.QEMU.NIC == "" {
			return fmt.Errorf("%s: board %s has no network card in QEMU to put on a LAN; boot it alone", v.image, v.board.Name)
		}
		base := strings.TrimSuffix(filepath.Base(v.image), filepath.Ext(v.image))
		v.name = base
		for n := i + 1; seen[v.name]; n++ {
			v.name = fmt.Sprintf("%s-%d", base, n)
		}
		seen[v.name] = true
	}
	return nil
}

// lanMAC is the LAN card's address of the Nth image (from 0).
func lanMAC(n int) string { return fmt.Sprintf("52:54:00:77:00:%02x", n+1) }

// boot starts the VM with o's console, LAN and CPUs, and announces a server's
// API when it is ready.
func (v *vmPlan) boot(cmd *cobra.Command, log *slog.Logger, o qemu.Options) error {
	o.Board, o.Image, o.Forward, o.Reboot, o.KeepOutput = v.board, v.image, v.forward, true, 1<<20
	log.Info("booting", "image", v.image, "board", v.board.Name, "accel", qemu.Accel(v.board.QEMU.Binary), "cpus", o.SMP, "forward", v.forward, "lan", o.LANMAC)
	vm, err := qemu.Start(o)
	if err != nil {
		return err
	}
	v.vm = vm
	if v.info.Role == "server" && len(v.forward) > 0 {
		go announceAPI(vm, cmd.ErrOrStderr(), v.info.Cluster, v.kubeconfig, v.apiHost)
	}
	return nil
}

// bootLAN boots several VMs on one LAN, their console lines prefixed with
// their names, until all have stopped or the command is interrupted.
func bootLAN(cmd *cobra.Command, log *slog.Logger, vms []*vmPlan, cpus int) error {
	lan, err := qemu.NewLAN()
	if err != nil {
		return err
	}
	defer lan.Close()
	out := &lockedWriter{w: cmd.OutOrStdout()}
	width := 0
	for _, v := range vms {
		width = max(width, len(v.name))
	}
	stopAll := func() {
		for _, v := range vms {
			if v.vm != nil {
				v.vm.Kill()
			}
		}
	}
	for i, v := range vms {
		v.console = &prefixWriter{out: out, prefix: fmt.Sprintf("%-*s | ", width, v.name)}
		if err := v.boot(cmd, log, qemu.Options{Console: v.console, LAN: lan.Join(), LANMAC: lanMAC(i), SMP: cpus}); err != nil {
			stopAll()
			return fmt.Errorf("%s: %w", v.image, err)
		}
	}
	// Each VM that stops is said; the others go on until Ctrl-C.
	type stop struct {
		v   *vmPlan
		err error
	}
	stopped := make(chan stop, len(vms))
	for _, v := range vms {
		go func() { stopped <- stop{v, v.vm.Wait()} }()
	}
	var failed []string
	for range vms {
		select {
		case st := <-stopped:
			st.v.console.flush()
			out.say(fmt.Sprintf("cairn: %s stopped (%v)", st.v.name, errOrOK(st.err)))
			if st.err != nil {
				failed = append(failed, st.v.name)
			}
		case <-cmd.Context().Done():
			stopAll()
			return nil
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%s failed; see %s above", strings.Join(failed, ", "), plural(len(failed), "its console", "their consoles"))
	}
	return nil
}

func errOrOK(err error) string {
	if err == nil {
		return "powered off"
	}
	return err.Error()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// lockedWriter lets several consoles write whole lines to one output.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// prefixWriter writes each complete line of a console with a prefix.
type prefixWriter struct {
	out    *lockedWriter
	prefix string
	line   []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			p.line = append(p.line, b...)
			if len(p.line) >= 4096 { // a very long line goes out in parts
				p.flush()
			}
			break
		}
		p.line = append(p.line, b[:i+1]...)
		b = b[i+1:]
		p.flush()
	}
	return n, nil
}

// flush writes what is left of a line. QEMU's output is copied by one
// goroutine per VM, so a prefixWriter is written by one at a time.
func (p *prefixWriter) flush() {
	if len(p.line) == 0 {
		return
	}
	p.out.say(p.prefix + string(bytes.TrimRight(p.line, "\r\n")))
	p.line = p.line[:0]
}

// say writes one whole line.
func (w *lockedWriter) say(line string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	fmt.Fprintln(w.w, line)
}

// same says whether two paths name one file.
func same(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

// forwardsAPI says whether forwards include the API's port on this machine.
func forwardsAPI(forward []string) bool {
	for _, f := range forward {
		if host, _ := qemu.ForwardPorts(f); host == apiPort {
			return true
		}
	}
	return false
}

// waitVM waits for QEMU to stop, and stops it when the command is
// interrupted (Ctrl-C, which the terminal also sends QEMU itself).
func waitVM(ctx context.Context, vm *qemu.VM) error {
	exited := make(chan error, 1)
	go func() { exited <- vm.Wait() }()
	select {
	case err := <-exited:
		if ctx.Err() != nil {
			return nil
		}
		return err
	case <-ctx.Done():
		vm.Kill()
		return nil
	}
}

// apiPort is where a server's API listens, in the guest and, forwarded,
// on this machine, as the kubeconfig of a QEMU board's build says.
const apiPort = "6443"

// forwardAPI adds the forward of the API's port unless one is given, and
// returns this machine's port of it: 6443, where the kubeconfig points, or
// a free port when another program (another cairn vm) holds that one.
// (Two cairn vm started at the same instant may both find 6443 free; the
// second's QEMU then fails to forward it and says so.)
func forwardAPI(forward []string) ([]string, string, error) {
	for _, f := range forward {
		if host, guest := qemu.ForwardPorts(f); guest == apiPort {
			return forward, host, nil
		}
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", apiPort))
	if err != nil {
		if l, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return nil, "", fmt.Errorf("no port on this machine for the server's API: %w", err)
		}
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	l.Close()
	return append(forward, port+":"+apiPort), port, nil
}

// findKubeconfig is the admin kubeconfig the build wrote beside the image:
// CLUSTER.kubeconfig when the folder's kubeconfig was another cluster's.
func findKubeconfig(img, cluster string) string {
	dir := filepath.Dir(img)
	for _, name := range []string{cluster + ".kubeconfig", "kubeconfig"} {
		if p := filepath.Join(dir, name); fileExists(p) {
			return p
		}
	}
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// announceAPI waits for the server's API and then says how to reach it at
// port on this machine: the kubeconfig's own address, 6443, or another.
func announceAPI(vm *qemu.VM, w io.Writer, cluster, kubeconfig, port string) {
	if _, err := vm.WaitFor(`msg="apiserver ready"`, 0, 24*time.Hour); err != nil {
		return
	}
	url := "https://127.0.0.1:" + port
	if kubeconfig == "" {
		fmt.Fprintf(w, "\r\ncairn: the API of cluster %s is ready at %s; its admin kubeconfig is where its first server image was built\r\n", cluster, url)
		return
	}
	server := ""
	if port != apiPort {
		server = " --server " + url
	}
	fmt.Fprintf(w, "\r\ncairn: the API of cluster %s is ready; from another terminal:\r\n    %s --kubeconfig %s%s get nodes\r\n", cluster, kubectlCommand(), kubeconfig, server)
}

func parseSize(s string) (int64, error) {
	var n int64
	var unit string
	if _, err := fmt.Sscanf(s, "%d%s", &n, &unit); err != nil && unit == "" {
		if _, err := fmt.Sscanf(s, "%d", &n); err != nil {
			return 0, fmt.Errorf("size %q: write it like 2G or 512M", s)
		}
	}
	mult := map[string]int64{"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("size %q: the unit must be K, M, G or T", s)
	}
	return n * mult, nil
}

func growImage(path string, size int64) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if st.Size() >= size {
		return nil
	}
	return os.Truncate(path, size)
}
