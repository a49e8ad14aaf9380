package cli

import (
	"bufio"
	"errors"
	"fmt"
	"strings"

	"github.com/cairn-os/cairn/image/flash"
	"github.com/cairn-os/cairn/internal/progress"
	"github.com/spf13/cobra"
)

func flashImage(cmd *cobra.Command, image, device string, yes, force bool) error {
	d, err := flash.Describe(device)
	if err != nil {
		return &ExitError{Code: 2, Err: err}
	}
	if err := d.Check(); err != nil && !(force && errors.Is(err, flash.ErrNotRemovable)) {
		return &ExitError{Code: 2, Err: err}
	}
	out := cmd.ErrOrStderr()
	fmt.Fprintln(out, d)
	if !yes {
		fmt.Fprintf(out, "Everything on %s will be lost. Write %s to it? [y/N] ", d.Path, image)
		answer, _ := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
		switch strings.ToLower(strings.TrimSpace(answer)) {
		case "y", "yes":
		case "":
			return &ExitError{Code: 2, Err: fmt.Errorf("no answer, so nothing was written; give --yes to write without asking")}
		default:
			return &ExitError{Code: 1, Err: fmt.Errorf("nothing was written to %s", d.Path)}
		}
	}
	res, err := flash.Write(cmd.Context(), image, d, out)
	if err != nil {
		return err
	}
	secs := res.Took.Seconds()
	fmt.Fprintf(cmd.OutOrStdout(), "%s: wrote %s (%s of data; holes skipped) in %.1fs, %s/s, read back and verified; it is safe to remove\n",
		d.Path, image, progress.Size(res.Data), secs, progress.Size(int64(float64(res.Data)/max(secs, 0.001))))
	return nil
}
