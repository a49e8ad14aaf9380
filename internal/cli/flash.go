package cli

import (
	"github.com/spf13/cobra"
)

func flashCmd() *cobra.Command {
	var yes, force bool
	c := &cobra.Command{
		Use:   "flash IMAGE DEVICE",
		Short: "Write an image to an SD card or USB stick, then read it back to verify it",
		Long: `Write an image to a card or stick (Linux): it shows the device's model and
size and asks before it writes (or --yes). It refuses a device that is
mounted, used as swap or holds the running system, a partition instead of
the whole device, a read-only card, and an image larger than the device; and
a device the kernel does not call removable (SD cards and USB disks count as
removable) unless --force (check with lsblk that it is the card). It opens the
device exclusively and with direct I/O, so the progress is the card's;
writes the image's data, and zeros where the image file has holes (the
kernel zeroes the cheapest way the card allows); syncs, reads every byte
back from the card and compares. The data partition is made on first boot.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return flashImage(cmd, args[0], args[1], yes, force)
		},
	}
	c.Flags().BoolVarP(&yes, "yes", "y", false, "write without asking")
	c.Flags().BoolVar(&force, "force", false, "write to a device the kernel does not call removable (never to a mounted one)")
	return c
}
