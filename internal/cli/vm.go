package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cairn-os/cairn/boards"
	"github.com/cairn-os/cairn/image/inspect"
	"github.com/cairn-os/cairn/internal/qemu"
	"github.com/spf13/cobra"
)

func vmCmd(logger func() *slog.Logger) *cobra.Command {
	var board, grow string
	var forward []string
	c := &cobra.Command{
		Use:   "vm IMAGE",
		Short: "Boot an image in QEMU with its serial console on this terminal",
		Long: `Boot an image in QEMU (software emulation unless KVM works here) with the
firmware its board needs, user-mode networking and the serial console on
stdin/stdout. The board is the one the image was built for. Like a real card,
the image is written to: the data partition is created in the space --grow
adds, and a reboot restarts the machine, as on a board (an update needs it).

A cluster server's API is forwarded to 127.0.0.1:6443, where the kubeconfig
the build wrote beside the image points; once the API is ready, the command
says the kubectl line that reaches it. Quit with Ctrl-A X.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			img := args[0]
			info, err := inspect.BuildInfo(img)
			if err != nil && (board == "" || !errors.Is(err, inspect.ErrNotCairn)) {
				if board == "" && errors.Is(err, inspect.ErrNotCairn) {
					err = fmt.Errorf("%w; if it is an image of another tool, name its board with --board", err)
				}
				return &ExitError{Code: 2, Err: err}
			}
			if board == "" {
				board = info.Board
			} else if info.Board != "" && info.Board != board {
				return &ExitError{Code: 2, Err: fmt.Errorf("%s was built for board %s, not %s; leave --board out", img, info.Board, board)}
			}
			p, err := boards.Get(board)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			size, err := parseSize(grow)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			kubeconfig := ""
			if info.Role == "server" {
				if forward, err = forwardAPI(forward); err != nil {
					return &ExitError{Code: 2, Err: err}
				}
				kubeconfig = findKubeconfig(img, info.Cluster)
			}
			if err := growImage(img, size); err != nil {
				return err
			}
			logger().Info("booting", "image", img, "board", p.Name, "accel", qemu.Accel(p.QEMU.Binary), "forward", forward)
			vm, err := qemu.Start(qemu.Options{Board: p, Image: img, Forward: forward, Console: cmd.OutOrStdout(), Stdin: true, Reboot: true})
			if err != nil {
				return err
			}
			if info.Role == "server" {
				go announceAPI(vm, cmd.ErrOrStderr(), info.Cluster, kubeconfig)
			}
			return waitVM(cmd.Context(), vm)
		},
	}
	c.Flags().StringVarP(&board, "board", "b", "", "board the image was built for (default: read from the image)")
	c.Flags().StringVar(&grow, "grow", "2G", "grow the image file to this size first (never shrinks)")
	c.Flags().StringSliceVar(&forward, "forward", nil, "forward host TCP ports to the guest (6443 or 8080:80)")
	return c
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
// says so in one sentence if this machine's port is taken.
func forwardAPI(forward []string) ([]string, error) {
	for _, f := range forward {
		if f == apiPort || strings.HasSuffix(f, ":"+apiPort) {
			return forward, nil
		}
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", apiPort))
	if err != nil {
		return nil, fmt.Errorf("port %s on this machine is in use (another cairn vm?), so the server's API cannot be forwarded there; stop what holds it, or give --forward PORT:%s and use that port in the kubeconfig", apiPort, apiPort)
	}
	l.Close()
	return append(forward, apiPort), nil
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

// announceAPI waits for the server's API and then says how to reach it.
func announceAPI(vm *qemu.VM, w io.Writer, cluster, kubeconfig string) {
	if _, err := vm.WaitFor(`msg="apiserver ready"`, 0, 24*time.Hour); err != nil {
		return
	}
	if kubeconfig == "" {
		fmt.Fprintf(w, "\r\ncairn: the API of cluster %s is ready at https://127.0.0.1:%s; its admin kubeconfig is where its first server image was built\r\n", cluster, apiPort)
		return
	}
	fmt.Fprintf(w, "\r\ncairn: the API of cluster %s is ready; from another terminal:\r\n    %s --kubeconfig %s get nodes\r\n", cluster, kubectlCommand(), kubeconfig)
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
