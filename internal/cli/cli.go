// Package cli is the cairn command line. Run is the whole program; the main
// package only calls it, so tests drive the CLI in-process.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/cairn-os/cairn/configs"
	"github.com/cairn-os/cairn/image/build"
	"github.com/spf13/cobra"
)

// Version is stamped at build time with -ldflags -X.
var Version = "dev"

// ExitError carries a process exit code.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// Code maps an error from Run to the process exit code: 2 for bad input
// (config, flags), 1 for everything else.
func Code(err error) int {
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	if errors.Is(err, configs.ErrInvalid) || errors.Is(err, build.ErrInput) {
		return 2
	}
	return 1
}

// Run executes the cairn command line.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	root := &cobra.Command{
		Use:           "cairn",
		Short:         "Build immutable edge OS images with a baked-in Kubernetes node",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version,
	}
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	verbose := root.PersistentFlags().BoolP("verbose", "v", false, "log details")
	logger := func() *slog.Logger {
		level := slog.LevelInfo
		if *verbose {
			level = slog.LevelDebug
		}
		return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level, ReplaceAttr: dropTime}))
	}
	root.AddCommand(buildCmd(logger), boardsCmd(), configCmd(), vmCmd(logger), clusterCmd(),
		keysCmd(), upgradeCmd(), statusCmd(), rollbackCmd(), publishCmd(), kubectlCmd(), flashCmd())
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &ExitError{Code: 2, Err: fmt.Errorf("%w; see `%s --help`", err, c.CommandPath())}
	})
	usageArgs(root)
	return root.ExecuteContext(ctx)
}

func dropTime(groups []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey && len(groups) == 0 {
		return slog.Attr{}
	}
	return a
}

// usageArgs makes a wrong number of arguments bad input (exit 2) with a
// pointer to the help, like a wrong flag, in every command under c.
func usageArgs(c *cobra.Command) {
	if check := c.Args; check != nil {
		c.Args = func(c *cobra.Command, args []string) error {
			if err := check(c, args); err != nil {
				return &ExitError{Code: 2, Err: fmt.Errorf("%w; see `%s --help`", err, c.CommandPath())}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		usageArgs(sub)
	}
}
