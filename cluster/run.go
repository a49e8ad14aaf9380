// Package cluster will hold the embedded Kubernetes server and agent that
// cairnd runs (issue: "cairnd: the embedded single-binary Kubernetes server
// and agent"). Until then Run only keeps a supervised process alive and says
// plainly that no cluster runs.
package cluster

import (
	"context"
	"fmt"
	"io"
	"time"
)

// Run is cairnd's whole program for now.
func Run(ctx context.Context, args []string, out io.Writer) error {
	role := "node"
	if len(args) > 0 {
		role = args[0]
	}
	fmt.Fprintf(out, "cairnd: role %s: the embedded Kubernetes server and agent are not built yet; this process only holds the service slot that init supervises\n", role)
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			fmt.Fprintln(out, "cairnd: still no cluster in this build")
		}
	}
}
