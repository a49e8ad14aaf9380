//go:build cairnd

// Command cairnd is the device's cluster binary, started by init.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/cairn-os/cairn/cluster"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	code := cluster.Main(ctx, os.Args, os.Stdout)
	stop()
	os.Exit(code)
}
