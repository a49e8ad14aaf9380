//go:build !linux

package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

func flashImage(*cobra.Command, string, string, bool, bool) error {
	return &ExitError{Code: 2, Err: errors.New("cairn flash writes cards on Linux only for now; on another system use its own tool (dd, or Raspberry Pi Imager with a custom image)")}
}
