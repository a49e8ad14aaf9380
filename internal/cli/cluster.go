package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/cairn-os/cairn/cluster/identity"
	"github.com/spf13/cobra"
)

func clusterCmd() *cobra.Command {
	c := &cobra.Command{Use: "cluster", Short: "Manage a cluster's credentials"}
	c.AddCommand(rotateTokenCmd())
	return c
}

func rotateTokenCmd() *cobra.Command {
	var grace time.Duration
	c := &cobra.Command{
		Use:   "rotate-token NAME",
		Short: "Give cluster NAME a new join token, accepting the old one for a while",
		Long: `Give cluster NAME a new join secret, and so a new join token, in its secrets
folder. Servers built from then on accept the new token, and the old one until
--grace has passed, so that agents built with it keep joining (and renewing
their certificates) until they are rebuilt. An older token kept from an
earlier rotation is no longer accepted.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if grace < 0 {
				return &ExitError{Code: 2, Err: fmt.Errorf("--grace %v is negative; give 0 to refuse the old token as soon as the servers are updated", grace)}
			}
			dir, err := clusterDir(args[0])
			if err != nil {
				return err
			}
			before, err := identity.Load(dir)
			if err != nil {
				return err
			}
			b, err := identity.RotateSecret(dir, time.Now(), grace)
			if err != nil {
				return err
			}
			reportRotation(cmd, args[0], before, b)
			return nil
		},
	}
	c.Flags().DurationVar(&grace, "grace", 7*24*time.Hour, "how long servers built from now on still accept the old token")
	return c
}

// clusterDir is the secrets folder of the named cluster, which must exist.
func clusterDir(name string) (string, error) {
	dir, err := identity.DefaultDir(name)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return "", &ExitError{Code: 2, Err: fmt.Errorf("cluster %q has no secrets folder %s; name a cluster that an image was built for (cluster.name), or set CAIRN_CLUSTERS", name, dir)}
	}
	return dir, nil
}

func reportRotation(cmd *cobra.Command, name string, before, after *identity.Bundle) {
	w := cmd.OutOrStdout()
	until := after.PreviousUntil.UTC().Format(time.RFC3339)
	fmt.Fprintf(w, "cluster %s has a new join token (%s/%s); servers built from now on accept the old one until %s\n", name, after.Dir, identity.FileToken, until)
	if before.PreviousSecret != "" && time.Now().Before(before.PreviousUntil) {
		fmt.Fprintf(w, "the token before the old one, accepted until %s, is no longer accepted by servers built from now on\n",
			before.PreviousUntil.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(w, `next:
  1. rebuild the server images and update the servers; until then they accept only the old token
  2. then rebuild the agent images (a config that sets cluster.token needs the new one) and update
     the agents before %s; after that an agent with the old token can neither join nor
     renew its certificates, which last %d days
`, until, int(identity.NodeLifetime.Hours()/24))
}
