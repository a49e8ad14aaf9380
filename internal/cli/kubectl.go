package cli

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	"github.com/spf13/cobra"
)

// kubectlCmd runs the kubectl built into cairnd, for machines without one:
// cairnd for this machine's architecture if make built it, else the one
// for the other architecture under QEMU's user-mode emulation.
func kubectlCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "kubectl [ARGS]",
		Short: "Run the kubectl that cairnd carries (for machines without kubectl)",
		Long: `Run the kubectl built into cairnd, of the same Kubernetes release as the
nodes: bin/linux-ARCH/cairnd for this machine's architecture if it was built,
else one for another architecture under QEMU's user-mode emulation
(qemu-user-static, which make installs). Everything after kubectl is
kubectl's, e.g. cairn kubectl --kubeconfig out/kubeconfig get nodes.`,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			prog, pre, err := cairndKubectl(defaultBinDir())
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			c := exec.CommandContext(cmd.Context(), prog, append(pre, args...)...)
			c.Stdin, c.Stdout, c.Stderr = os.Stdin, cmd.OutOrStdout(), cmd.ErrOrStderr()
			if err := c.Run(); err != nil {
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					return &ExitError{Code: ee.ExitCode(), Err: errSaid}
				}
				return err
			}
			return nil
		},
	}
}

// errSaid is the error of a program that has said itself why it failed.
var errSaid = errors.New("")

// userEmulators are QEMU's user-mode emulators by GOARCH.
var userEmulators = map[string]string{"arm64": "qemu-aarch64-static", "amd64": "qemu-x86_64-static"}

// cairndKubectl is the program and the first arguments that run cairnd's
// kubectl from binDir.
func cairndKubectl(binDir string) (string, []string, error) {
	native := filepath.Join(binDir, "linux-"+runtime.GOARCH, "cairnd")
	if runtime.GOOS == "linux" && fileExists(native) {
		return native, []string{"kubectl"}, nil
	}
	for arch, emu := range userEmulators {
		bin := filepath.Join(binDir, "linux-"+arch, "cairnd")
		if arch == runtime.GOARCH || !fileExists(bin) {
			continue
		}
		if path, err := exec.LookPath(emu); err == nil {
			return path, []string{bin, "kubectl"}, nil
		}
		return "", nil, fmt.Errorf("%s is for %s and %s is not installed to run it; install qemu-user-static (make deps does), or kubectl", bin, arch, emu)
	}
	return "", nil, fmt.Errorf("no cairnd in %s/linux-*/; build one with make cluster-%s, or install kubectl", binDir, runtime.GOARCH)
}

// kubectlCommand is how a user here runs kubectl: their own, or cairn's.
func kubectlCommand() string {
	if _, err := exec.LookPath("kubectl"); err == nil {
		return "kubectl"
	}
	return os.Args[0] + " kubectl"
}
