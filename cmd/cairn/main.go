// Command cairn builds Cairn images and boots them; see `cairn --help`.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"github.com/cairn-os/cairn/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "cairn:", err)
		os.Exit(cli.Code(err))
	}
}
