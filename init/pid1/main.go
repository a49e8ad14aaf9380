package pid1

import (
	"fmt"
	"os"
)

// Main is the init program: stage 1 in the initramfs, stage 2 after
// switch_root (marked by CAIRN_STAGE=2).
func Main() {
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "init: this is the Cairn device init; it runs as PID 1 on a Cairn image, not by hand")
		os.Exit(2)
	}
	if os.Getenv("CAIRN_STAGE") == "2" {
		Stage2()
	}
	Stage1()
}
