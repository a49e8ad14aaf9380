package cli

import (
	"errors"
	"fmt"

	"github.com/cairn-os/cairn/configs"
	"github.com/spf13/cobra"
)

func configCmd() *cobra.Command {
	c := &cobra.Command{Use: "config", Short: "Check and describe node configs"}
	c.AddCommand(&cobra.Command{
		Use:   "validate FILE...",
		Short: "Check config files; errors name file:line:col and the field",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var failed error
			for _, f := range args {
				_, warns, err := configs.Load(f)
				for _, w := range warns {
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", w)
				}
				if errors.Is(err, configs.ErrInvalid) {
					fmt.Fprintln(cmd.ErrOrStderr(), err)
					failed = &ExitError{Code: 2, Err: fmt.Errorf("%s is not valid", f)}
					continue
				}
				if err != nil {
					return &ExitError{Code: 2, Err: err}
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: valid\n", f)
			}
			return failed
		},
	})
	c.AddCommand(&cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of the config (for editor completion)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := configs.Schema()
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), string(s))
			return err
		},
	})
	c.AddCommand(&cobra.Command{
		Use:   "reference",
		Short: "Print the config reference as a Markdown table",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprint(cmd.OutOrStdout(), configs.Reference())
			return err
		},
	})
	return c
}
