package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/cairn-os/cairn/boards"
	"github.com/spf13/cobra"
)

func boardsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "boards",
		Short: "List the boards cairn builds images for",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "BOARD\tARCH\tBOOT\tDESCRIPTION")
			for _, n := range boards.Names() {
				p, err := boards.Get(n)
				if err != nil {
					return err
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", p.Name, p.Arch, p.Family, p.Description)
			}
			return w.Flush()
		},
	}
}
