package cli

import (
	"errors"
	"fmt"

	"github.com/cairn-os/cairn/configs"
	"github.com/spf13/cobra"
)

func configCmd() *cobra.Command {
	c := &cobra.Command{Use: "config", Short: "Check and describe node configs"}
	var base string
	validate := &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check config files; errors name file:line:col and the field",
		Long: "Check config files; errors name file:line:col and the field.\n\n" +
			"With --base, each FILE is checked as a cairn.yaml laid over the image's config BASE:\n" +
			"its top-level sections replace BASE's, as init does at boot.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var under *configs.Config
			if base != "" {
				c, err := loadReporting(cmd, base)
				if err != nil {
					return err
				}
				under = c
			}
			var failed error
			for _, f := range args {
				var err error
				if under == nil {
					_, err = loadReporting(cmd, f)
				} else {
					_, err = layerReporting(cmd, under, f)
				}
				if err != nil {
					failed = err
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: valid\n", f)
			}
			return failed
		},
	}
	validate.Flags().StringVar(&base, "base", "", "the image's config that each FILE is laid over")
	c.AddCommand(validate)
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

// loadReporting loads a config, printing its warnings and problems; an
// unusable file is an exit-code-2 error.
func loadReporting(cmd *cobra.Command, file string) (*configs.Config, error) {
	c, warns, err := configs.Load(file)
	return report(cmd, file, c, warns, err)
}

func layerReporting(cmd *cobra.Command, base *configs.Config, file string) (*configs.Config, error) {
	data, err := configs.ReadFile(file)
	if err != nil {
		return report(cmd, file, nil, nil, fmt.Errorf("read config: %w", err))
	}
	c, warns, err := configs.Layer(base, file, data)
	return report(cmd, file, c, warns, err)
}

func report(cmd *cobra.Command, file string, c *configs.Config, warns []configs.Problem, err error) (*configs.Config, error) {
	for _, w := range warns {
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", w)
	}
	if errors.Is(err, configs.ErrInvalid) {
		fmt.Fprintln(cmd.ErrOrStderr(), err)
		return nil, &ExitError{Code: 2, Err: fmt.Errorf("%s is not valid", file)}
	}
	if err != nil {
		return nil, &ExitError{Code: 2, Err: err}
	}
	return c, nil
}
