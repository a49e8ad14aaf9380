// Package supervise runs cairnd's components as child processes of the
// same binary, restarting them with back-off and keeping their logs.
package supervise

import (
	"bufio"
	"context"
	"io"
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
// is its entry point) and restarts it with back-off while ctx lives. Its
// output goes to logDir/NAME.log (kept below a size); when it exits, the
// last lines it printed are logged with the reason.
func Run(ctx context.Context, log *slog.Logger, self string, c Component, logDir string) {
	backoff := time.Second
	out := &rotating{path: filepath.Join(logDir, c.Name+".log"), max: 20 << 20}
	defer out.Close()
	for ctx.Err() == nil {
		prog, argv := self, append([]string{c.Name}, c.Args...)
		if p := Upstream(c.Name); p != "" {
			prog, argv = p, c.Args
		}
		cmd := exec.CommandContext(ctx, prog, argv...)
		cmd.Env = append(os.Environ(), c.Env...)
		if DefaultGOGC() && prog == self && !slices.ContainsFunc(c.Env, isGOGC) {
			cmd.Env = append(cmd.Env, "GOGC="+strconv.Itoa(GOGC))
		}
		cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
		cmd.WaitDelay = 20 * time.Second
		pr, pw := io.Pipe()
		cmd.Stdout, cmd.Stderr = pw, pw
		tail := &lastLines{n: 5}
		copied := make(chan struct{})
		go func() { copyLines(pr, out, tail); close(copied) }()
		start := time.Now()
		err := cmd.Start()
		if err == nil {
			log.Info("started", "component", c.Name, "program", prog, "pid", cmd.Process.Pid, "log", out.path)
			err = cmd.Wait()
		}
		pw.Close()
		<-copied
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > 2*time.Minute {
			backoff = time.Second
		}
		log.Error("exited; restarting", "component", c.Name, "err", err, "in", backoff, "last_output", tail.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, time.Minute)
	}
}

func isGOGC(kv string) bool { return strings.HasPrefix(kv, "GOGC=") }

func copyLines(r io.Reader, out io.Writer, tail *lastLines) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		out.Write(append(sc.Bytes(), '\n'))
		tail.add(sc.Text())
	}
	io.Copy(io.Discard, r)
}

// lastLines keeps the last n lines.
type lastLines struct {
	n     int
	lines []string
}

func (l *lastLines) add(s string) {
	l.lines = append(l.lines, s)
	if len(l.lines) > l.n {
		l.lines = l.lines[1:]
	}
}

func (l *lastLines) String() string { return strings.Join(l.lines, " | ") }

// rotating appends to a file and moves it to path.1 when it passes max.
type rotating struct {
	path string
	max  int64
	f    *os.File
	size int64
}

func (r *rotating) Write(p []byte) (int, error) {
	if r.f == nil || r.size+int64(len(p)) > r.max {
		if r.f != nil {
			r.f.Close()
			os.Rename(r.path, r.path+".1")
		}
		os.MkdirAll(filepath.Dir(r.path), 0o755)
		f, err := os.OpenFile(r.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
		if err != nil {
			return 0, err
		}
		st, _ := f.Stat()
		r.f, r.size = f, st.Size()
	}
	n, err := r.f.Write(p)
	r.size += int64(n)
	return n, err
}

func (r *rotating) Close() error {
	if r.f == nil {
		return nil
	}
	return r.f.Close()
}
