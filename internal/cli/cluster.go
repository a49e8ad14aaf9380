package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/cairn-os/cairn/cluster/identity"
	"github.com/cairn-os/cairn/cluster/join"
	"github.com/spf13/cobra"
)

func clusterCmd() *cobra.Command {
	c := &cobra.Command{Use: "cluster", Short: "Manage a cluster's credentials"}
	c.AddCommand(rotateTokenCmd(), refuseCmd())
	return c
}

func refuseCmd() *cobra.Command {
	var server string
	c := &cobra.Command{
		Use:   "refuse NAME NODE",
		Short: "Refuse node NODE of cluster NAME (a lost card): servers turn its joins away",
		Long: fmt.Sprintf(`Refuse node NODE of cluster NAME, for a lost or stolen card: every server of the
cluster turns away its joins from then on, so that the node cannot renew its
certificates, which last %d days. The refusal is the Secret
kube-system/NODE.node-refused.cairn, made as the cluster's administrator with a
certificate from the cluster's secrets that lasts an hour; no image is rebuilt.`, nodeDays()),
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if server == "" {
				return &ExitError{Code: 2, Err: errors.New("--server is missing; give the cluster's API URL, https://HOST:6443")}
			}
			b, err := loadCluster(args[0])
			if err != nil {
				return err
			}
			already, err := join.Refuse(cmd.Context(), b, server, args[1], time.Now())
			if errors.Is(err, join.ErrNodeName) {
				return &ExitError{Code: 2, Err: err}
			}
			if err != nil {
				return err
			}
			reportRefusal(cmd, args[1], already)
			return nil
		},
	}
	c.Flags().StringVar(&server, "server", "", "the cluster's API URL (https://HOST:6443)")
	return c
}

func reportRefusal(cmd *cobra.Command, node string, already bool) {
	w := cmd.OutOrStdout()
	if already {
		fmt.Fprintf(w, "node %s was refused already\n", node)
	} else {
		fmt.Fprintf(w, "node %s is refused: the servers turn its joins away\n", node)
	}
	fmt.Fprintf(w, `its certificates stay valid until they expire, at most %d days after its last join; until then,
to evict its pods and keep others off (a node cannot lift its own taints):
  kubectl taint node %s cairn.dev/refused=true:NoExecute
to let a machine join under this name again:
  kubectl delete node %s && kubectl -n kube-system delete secret %s %s
`, nodeDays(), node, node, join.PasswordSecret(node), join.RefusalSecret(node))
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
			before, err := loadCluster(args[0])
			if err != nil {
				return err
			}
			b, err := identity.RotateSecret(before.Dir, time.Now(), grace)
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

// loadCluster reads the secrets of the named cluster, which must exist.
func loadCluster(name string) (*identity.Bundle, error) {
	dir, err := identity.DefaultDir(name)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil, &ExitError{Code: 2, Err: fmt.Errorf("cluster %q has no secrets folder %s; name a cluster that an image was built for (cluster.name), or set CAIRN_CLUSTERS", name, dir)}
	}
	return identity.Load(dir)
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
`, until, nodeDays())
}

// nodeDays is how many days a node's certificates last.
func nodeDays() int { return int(identity.NodeLifetime.Hours() / 24) }
