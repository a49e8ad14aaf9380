package cli

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/cairn-os/cairn/boards"
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
stdin/stdout. Like a real card, the image is written to: the data partition is
created in the space --grow adds, and a reboot restarts the machine, as on a
board (an update needs it). Quit with Ctrl-A X.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := boards.Get(board)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			size, err := parseSize(grow)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			if err := growImage(args[0], size); err != nil {
				return err
			}
			logger().Info("booting", "image", args[0], "board", p.Name, "accel", qemu.Accel(p.QEMU.Binary), "forward", forward)
			vm, err := qemu.Start(qemu.Options{Board: p, Image: args[0], Forward: forward, Console: cmd.OutOrStdout(), Stdin: true, Reboot: true})
			if err != nil {
				return err
			}
			return vm.Wait()
		},
	}
	c.Flags().StringVarP(&board, "board", "b", "qemu-arm64", "board the image was built for")
	c.Flags().StringVar(&grow, "grow", "2G", "grow the image file to this size first (never shrinks)")
	c.Flags().StringSliceVar(&forward, "forward", nil, "forward host TCP ports to the guest (6443 or 8080:80)")
	return c
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
