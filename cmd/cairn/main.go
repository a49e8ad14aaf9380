// Command cairn builds Cairn images and boots them; see `cairn --help`.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/cairn-os/cairn/internal/cli"
)

func main() {
	// Ctrl-C or a TERM stops the work in hand (cairn vm stops its VMs).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		// A program cairn ran (kubectl) has said why it failed.
		if msg := err.Error(); msg != "" {
			fmt.Fprintln(os.Stderr, "cairn:", msg)
		}
		os.Exit(cli.Code(err))
	}
}
