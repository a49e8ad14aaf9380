// Package supervise runs cairnd's components as child processes of the
// same binary (or as the upstream programs that replace them), through the
// shared supervisor of internal/service.
package supervise

import (
	"context"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-os/cairn/boot"
	"github.com/cairn-os/cairn/internal/retry"
	"github.com/cairn-os/cairn/internal/service"
)

// Component is one child process: its cairnd entry point and arguments.
type Component struct {
	Name string
	Args []string
	Env  []string // added to cairnd's environment
}

// GOGC is the Go garbage collector's target for cairnd's components (the
// runtime's default is 100): a heap grows to 1.5 times what is live
// between collections rather than twice, which costs some CPU and saves a
// quarter of the memory of a heap-bound process such as the apiserver. A
// GOGC in cairnd's environment wins. Upstream programs keep their default.
const GOGC = 50

// DefaultGOGC says whether cairnd applies GOGC to itself and its built-in
// components: only when its own environment sets none.
func DefaultGOGC() bool {
	_, set := os.LookupEnv("GOGC")
	return !set
}

// Together is one process that runs several built-in components: its
// entry point is name and its arguments each part's name and arguments,
// the parts separated by "--" (Parts reads them back). ok is false when the
// image carries an upstream program for any part: those run one per
// process, as kubeadm runs them.
func Together(name string, parts ...Component) (c Component, ok bool) {
	if slices.ContainsFunc(parts, func(p Component) bool { return Upstream(p.Name) != "" }) {
		return Component{}, false
	}
	c.Name = name
	for i, p := range parts {
		if i > 0 {
			c.Args = append(c.Args, "--")
		}
		c.Args = append(append(c.Args, p.Name), p.Args...)
		c.Env = append(c.Env, p.Env...)
	}
	return c, true
}

// Parts splits the arguments of a Together process into each part's
// arguments by its name.
func Parts(args []string) map[string][]string {
	parts := map[string][]string{}
	for len(args) > 0 {
		i := slices.Index(args, "--")
		if i < 0 {
			i = len(args)
		}
		if i > 0 {
			parts[args[0]] = args[1:i]
		}
		args = args[min(i+1, len(args)):]
	}
	return parts
}

// UpstreamDir is where Upstream looks (boot.UpstreamDir on a device).
var UpstreamDir = boot.UpstreamDir

// Upstream returns the upstream program that replaces the built-in
// component name in this image, or "" when there is none (the usual case).
func Upstream(name string) string {
	p := filepath.Join(UpstreamDir, name)
	if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
		return p
	}
	return ""
}

// Flags renders defaults overridden by the config's extraArgs for one
// component (flag names without dashes, as in extraArgs: {kubelet: ["v=2"]}).
func Flags(defaults map[string]string, extra []string) []string {
	m := maps.Clone(defaults)
	if m == nil {
		m = map[string]string{}
	}
	for _, e := range extra {
		k, v, _ := strings.Cut(strings.TrimLeft(e, "-"), "=")
		m[k] = v
	}
	out := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, "--"+k+"="+m[k])
	}
	return out
}

// Run runs one component as a child process of this binary (self; argv[1]
// is its entry point), or the upstream program that replaces it, and
// restarts it with back-off while ctx lives. Its output goes to
// logDir/NAME.log (kept below a size); when it exits, the last lines it
// printed are logged with the reason.
func Run(ctx context.Context, log *slog.Logger, self string, c Component, logDir string) {
	svc := &service.Service{
		Name: c.Name, Command: func() *exec.Cmd { return command(self, c) },
		LogFile: filepath.Join(logDir, c.Name+".log"),
		Backoff: retry.Backoff{Min: time.Second, Max: time.Minute}, Grace: 20 * time.Second,
		Log: log,
	}
	svc.Run(ctx)
}

// command is one run of c: the upstream program when the image has one,
// else self with the component's name first, with GOGC for the built-in.
func command(self string, c Component) *exec.Cmd {
	prog, argv := self, append([]string{c.Name}, c.Args...)
	if p := Upstream(c.Name); p != "" {
		prog, argv = p, c.Args
	}
	cmd := exec.Command(prog, argv...)
	cmd.Env = append(os.Environ(), c.Env...)
	if DefaultGOGC() && prog == self && !slices.ContainsFunc(c.Env, isGOGC) {
		cmd.Env = append(cmd.Env, "GOGC="+strconv.Itoa(GOGC))
	}
	return cmd
}

func isGOGC(kv string) bool { return strings.HasPrefix(kv, "GOGC=") }
