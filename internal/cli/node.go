package cli

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cairn-os/cairn/boot/bundle"
	"github.com/cairn-os/cairn/internal/atomicfile"
	"github.com/cairn-os/cairn/internal/fleet"
	"github.com/cairn-os/cairn/internal/nodeapi"
	"github.com/cairn-os/cairn/internal/progress"
	"github.com/spf13/cobra"
)

func keysCmd() *cobra.Command {
	c := &cobra.Command{Use: "keys", Short: "The fleet's keys: what signs update bundles and opens the node API"}
	c.AddCommand(&cobra.Command{
		Use:   "generate",
		Short: "Make the fleet's keys, once",
		Long: `Make the fleet's keys in $CAIRN_FLEET (default: cairn/fleet in your config
folder): an ed25519 key that signs update bundles, and the node API's CA with
the administrator's client certificate and the nodes' server certificate.
Images built afterwards trust them; back the folder up, since nodes in the
field trust only these keys.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := fleet.DefaultDir()
			if err != nil {
				return err
			}
			f, err := fleet.Generate(dir, time.Now())
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: fleet keys made; back this folder up\nbundle signing key (update.publicKeys): %s\n", dir, f.PublicKey())
			return nil
		},
	})
	return c
}

// nodeFlags are the flags of the verbs that talk to a node.
type nodeFlags struct {
	node    string
	timeout time.Duration
}

func (n *nodeFlags) add(c *cobra.Command) {
	c.Flags().StringVarP(&n.node, "node", "n", "", "the node: host or address, with :port if not "+strconv.Itoa(nodeapi.Port))
	c.Flags().DurationVar(&n.timeout, "timeout", 30*time.Second, "give up when the node does not answer within this")
	c.MarkFlagRequired("node")
}

// client is an HTTP client of the node API with the fleet's admin
// credentials, and the node's base URL.
func (n *nodeFlags) client() (*http.Client, string, error) {
	dir, err := fleet.DefaultDir()
	if err != nil {
		return nil, "", err
	}
	f, err := fleet.Load(dir)
	if err != nil {
		return nil, "", err
	}
	tlsConf, err := f.AdminTLS()
	if err != nil {
		return nil, "", err
	}
	host := n.node
	if _, _, err := net.SplitHostPort(host); err != nil {
		host = net.JoinHostPort(strings.Trim(host, "[]"), strconv.Itoa(nodeapi.Port))
	}
	tr := &http.Transport{TLSClientConfig: tlsConf, ResponseHeaderTimeout: n.timeout,
		DialContext: (&net.Dialer{Timeout: n.timeout}).DialContext, TLSHandshakeTimeout: n.timeout}
	return &http.Client{Transport: tr}, "https://" + host, nil
}

// call sends a request and returns the answer's body when it is a success.
func (n *nodeFlags) call(ctx context.Context, method, path string, body io.Reader, size int64) ([]byte, error) {
	c, base, err := n.client()
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, body)
	if err != nil {
		return nil, err
	}
	req.ContentLength = size
	resp, err := c.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("node %s: %w (is it up, and built with this fleet's keys?)", n.node, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, nodeapi.MaxStatus))
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", n.node, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("node %s: %s", n.node, strings.TrimSpace(string(data)))
	}
	return data, nil
}

// result posts to path and reads the Result the node answers with.
func (n *nodeFlags) result(ctx context.Context, path string, body io.Reader, size int64) (*nodeapi.Result, error) {
	data, err := n.call(ctx, http.MethodPost, path, body, size)
	if err != nil {
		return nil, err
	}
	var r nodeapi.Result
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("node %s: %w", n.node, err)
	}
	return &r, nil
}

func upgradeCmd() *cobra.Command {
	var n nodeFlags
	var downgrade bool
	c := &cobra.Command{
		Use:   "upgrade BUNDLE --node HOST",
		Short: "Push an update bundle to a node, which installs it into its other slot and reboots into it on trial",
		Long: `Push an update bundle (cairn build --bundle) to a node over its node API.
The node checks the bundle's signature before it writes a byte, streams it
into the slot it is not running, reads it back, and reboots into it once on
trial; it keeps the new slot only if it comes up healthy, and otherwise
boots the old one again by itself. Follow it with cairn status --node.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			defer f.Close()
			st, err := f.Stat()
			if err != nil {
				return err
			}
			var body io.Reader = f
			if progress.IsTerminal(cmd.ErrOrStderr()) {
				bar := progress.New(cmd.ErrOrStderr(), "sending "+args[0], st.Size())
				defer bar.Done()
				body = bar.Reader(f)
			}
			path := nodeapi.PathUpdate
			if downgrade {
				path += "?allow-downgrade=1"
			}
			n.timeout = max(n.timeout, 10*time.Minute) // the node answers once the slot is written and checked
			start := time.Now()
			r, err := n.result(cmd.Context(), path, body, st.Size())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s (build %d) installed in slot %s in %.0fs; the node reboots into it on trial and keeps it if it comes up healthy\n",
				n.node, r.Version, r.Build, r.Slot, time.Since(start).Seconds())
			return nil
		},
	}
	n.add(c)
	c.Flags().BoolVar(&downgrade, "allow-downgrade", false, "install a bundle older than what the node runs")
	return c
}

func statusCmd() *cobra.Command {
	var n nodeFlags
	var asJSON bool
	c := &cobra.Command{
		Use:   "status --node HOST",
		Short: "Show a node's slots, what each holds, which is committed, and its last update",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, err := n.call(cmd.Context(), http.MethodGet, nodeapi.PathStatus, nil, 0)
			if err != nil {
				return err
			}
			if asJSON {
				_, err := cmd.OutOrStdout().Write(data)
				return err
			}
			var s nodeapi.Status
			if err := json.Unmarshal(data, &s); err != nil {
				return fmt.Errorf("node %s: %w", n.node, err)
			}
			printStatus(cmd.OutOrStdout(), &s)
			return nil
		},
	}
	n.add(c)
	c.Flags().BoolVar(&asJSON, "json", false, "print the node's answer as JSON")
	return c
}

func printStatus(w io.Writer, s *nodeapi.Status) {
	fmt.Fprintf(w, "%s (%s)\n", s.Hostname, s.Board)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SLOT\tVERSION\tBUILD\tSTATE")
	for _, slot := range []string{"a", "b"} {
		var states []string
		if slot == s.Booted {
			states = append(states, "booted")
		}
		if slot == s.Committed {
			states = append(states, "committed")
		}
		if slot == s.Booted && s.Trial {
			states = append(states, "on trial")
		}
		os := s.Slots[slot]
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", slot, os.Version, os.Build, strings.Join(states, ", "))
	}
	tw.Flush()
	if l := s.Last; l != nil {
		fmt.Fprintf(w, "last update: %s %s (build %d) into slot %s at %s", l.State, l.Version, l.Build, l.Slot, l.Time.Format(time.RFC3339))
		if l.Reason != "" {
			fmt.Fprintf(w, ": %s", l.Reason)
		}
		fmt.Fprintln(w)
	}
}

func rollbackCmd() *cobra.Command {
	var n nodeFlags
	c := &cobra.Command{
		Use:   "rollback --node HOST",
		Short: "Reboot a node into its other slot on trial; it keeps that slot if it comes up healthy",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := n.result(cmd.Context(), nodeapi.PathRollback, nil, 0)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: rebooting into slot %s (%s, build %d) on trial\n", n.node, r.Slot, r.Version, r.Build)
			return nil
		},
	}
	n.add(c)
	return c
}

func publishCmd() *cobra.Command {
	var channel, bundleURL string
	c := &cobra.Command{
		Use:   "publish BUNDLE --channel FILE",
		Short: "Point an update channel (what nodes poll at update.url) at a bundle",
		Long: `Write a channel file that offers BUNDLE to the nodes whose update.url
names it, signed with the fleet's key. Serve the channel's folder with any
HTTP server that answers Range requests (so that a broken download resumes);
the bundle's address is written relative to the channel, so BUNDLE must be in
the channel's folder or below it, unless --url gives it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := fleet.DefaultDir()
			if err != nil {
				return err
			}
			f, err := fleet.Load(dir)
			if err != nil {
				return err
			}
			ix, err := indexOf(args[0], f)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			if ix.Bundle = bundleURL; ix.Bundle == "" {
				rel, err := filepath.Rel(filepath.Dir(channel), args[0])
				if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
					return &ExitError{Code: 2, Err: fmt.Errorf("%s is not in the folder of %s: move it there, or give its address with --url", args[0], channel)}
				}
				ix.Bundle = (&url.URL{Path: filepath.ToSlash(rel)}).String()
			}
			data, err := bundle.SignIndex(ix, f.SignKey)
			if err != nil {
				return err
			}
			if err := atomicfile.Write(channel, data, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: offers %s (build %d) for %s nodes: %s\n", channel, ix.Version, ix.Build, ix.Board, ix.Bundle)
			return nil
		},
	}
	c.Flags().StringVar(&channel, "channel", "", "the channel file to write, in the folder an HTTP server serves")
	c.Flags().StringVar(&bundleURL, "url", "", "the bundle's address, if not beside the channel")
	c.MarkFlagRequired("channel")
	return c
}

// indexOf describes a bundle for a channel, from its manifest, which must
// be signed with the fleet's key.
func indexOf(file string, f *fleet.Fleet) (*bundle.Index, error) {
	in, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return nil, err
	}
	r, err := bundle.NewReader(in, []ed25519.PublicKey{f.SignKey.Public().(ed25519.PublicKey)})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	m := r.Manifest
	return &bundle.Index{Board: m.Board, Arch: m.Arch, Family: string(m.Family), Cluster: m.Cluster, Version: m.Version, Build: m.Build, Size: st.Size()}, nil
}
