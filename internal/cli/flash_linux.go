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
	// Opened before the question, so that what is written is what was shown.
	t, err := d.Open()
	if err != nil {
		return &ExitError{Code: 2, Err: err}
	}
	defer t.Close()
	out := cmd.ErrOrStderr()
	fmt.Fprintln(out, d)
	if !yes {
		fmt.Fprintf(out, "Everything on %s will be lost. Write %s to it? [y/N] ", d.Path, image)
		answer := make(chan string, 1)
		go func() {
			s, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
			if err != nil && s == "" {
				s = "\x00" // no answer at all
			}
			answer <- s
		}()
		var a string
		select {
		case a = <-answer:
		case <-cmd.Context().Done():
			fmt.Fprintln(out)
			return &ExitError{Code: 1, Err: fmt.Errorf("nothing was written to %s", d.Path)}
		}
		switch strings.ToLower(strings.TrimSpace(a)) {
		case "y", "yes":
		case "\x00":
			return &ExitError{Code: 2, Err: fmt.Errorf("no answer, so nothing was written; give --yes to write without asking")}
		default:
			return &ExitError{Code: 1, Err: fmt.Errorf("nothing was written to %s", d.Path)}
		}
	}
	res, err := t.Write(cmd.Context(), image, out)
	if err != nil {
		return err
	}
	secs := res.Wrote.Seconds()
	fmt.Fprintf(cmd.OutOrStdout(), "%s: wrote %s (%s: %s of data, the rest zeros) in %.1fs, %s/s; read it back in %.1fs and it matches; it is safe to remove\n",
		d.Path, image, progress.Size(res.Image), progress.Size(res.Data), secs, progress.Size(int64(float64(res.Image)/max(secs, 0.001))), res.Read.Seconds())
	return nil
}
