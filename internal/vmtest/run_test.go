package vmtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-os/cairn/boards"
	"github.com/cairn-os/cairn/image/inspect"
)

// TestMakeRun is what make run does, as a new user does it: cairn build
// with no config and no board (the built-in default, a one-node server),
// then cairn vm with only the image, which reads the board from the image,
// forwards the API and, once the API is ready, says the kubectl line that
// reaches it. The test runs that line, then stops cairn vm as Ctrl-C would.
func TestMakeRun(t *testing.T) {
	needArm64(t)
	turn(t, 1, 74)
	dir := t.TempDir()
	env := []string{"CAIRN_CLUSTERS=" + filepath.Join(dir, "clusters")}
	img := filepath.Join(dir, "out", "default.img")
	out, err := cairnProgram(t, env, "build", "--output", img, "--bin-dir", deviceBinaries(t))
	if err != nil {
		t.Fatalf("cairn build: %v\n%s", err, out)
	}
	kubeconfig := filepath.Join(dir, "out", "kubeconfig")
	if !strings.Contains(out, kubeconfig+": admin kubeconfig for cluster default") {
		t.Errorf("the build did not say it wrote %s:\n%s", kubeconfig, out)
	}
	info, err := inspect.BuildInfo(img)
	if err != nil {
		t.Fatal(err)
	}
	if info.Board != "qemu-arm64" || info.Role != "server" || info.Cluster != "default" {
		t.Errorf("the image says board %q, role %q, cluster %q; want qemu-arm64, server, default", info.Board, info.Role, info.Cluster)
	}

	vm := startCairnVM(t, env, img)
	server := vm.kubectl(t, kubeconfig, "cairn-demo")
	// What the line is on a machine without kubectl: cairnd's own.
	if out, err := cairnProgram(t, env, "kubectl", "--kubeconfig", kubeconfig, "--server", server, "get", "nodes"); err != nil || !regexp.MustCompile(`(?m)^cairn-demo\s+Ready\s`).MatchString(out) {
		t.Errorf("cairn kubectl get nodes: %v\n%s", err, out)
	}
	if !strings.Contains(vm.console.String(), "\ncairn: ready slot=a") {
		t.Errorf("cairn vm did not show the console on its output:\n%s", vm.console.String())
	}
	vm.interrupt(t)
}

func needArm64(t *testing.T) {
	board, err := boards.Get("qemu-arm64")
	if err != nil {
		t.Fatal(err)
	}
	need(t, board.QEMU.Binary)
}

// cairnVM is bin/cairn vm running as a program, in a process group of its
// own as a terminal's foreground job is.
type cairnVM struct {
	cmd           *exec.Cmd
	started       time.Time
	console, said syncBuffer // its stdout and stderr
	exited        chan error
}

func startCairnVM(t *testing.T, env []string, args ...string) *cairnVM {
	t.Helper()
	v := &cairnVM{exited: make(chan error, 1), started: time.Now()}
	v.cmd = exec.Command(filepath.Join(deviceBinaries(t), "cairn"), append([]string{"vm"}, args...)...)
	v.cmd.Env = append(v.cmd.Environ(), env...)
	v.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	v.cmd.Stdout, v.cmd.Stderr = &v.console, &v.said
	if err := v.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { v.exited <- v.cmd.Wait() }()
	t.Cleanup(func() {
		syscall.Kill(-v.cmd.Process.Pid, syscall.SIGKILL)
		if failedNow(t) {
			c := v.console.String()
			t.Logf("cairn vm said:\n%s\nits output, the last 30000 bytes:\n%s", v.said.String(), c[max(0, len(c)-30000):])
		}
	})
	return v
}

// kubectl waits for the kubectl line cairn vm says once the API is ready,
// checks that it names kubeconfig, and runs it until it lists the nodes
// Ready. It returns the API's address on this machine: the kubeconfig's,
// https://127.0.0.1:6443, unless the line names another, as it does when
// another cairn vm (another test) holds that port.
func (v *cairnVM) kubectl(t *testing.T, kubeconfig string, nodes ...string) string {
	t.Helper()
	line := regexp.MustCompile(`\n    (.+ --kubeconfig (\S+)(?: --server (https://127\.0\.0\.1:\d+))? get nodes)\r\n`)
	var m []string
	eventually(t, serverTimeout, "cairn vm to say the kubectl line", func() bool {
		m = line.FindStringSubmatch(v.said.String())
		select {
		case err := <-v.exited:
			t.Fatalf("cairn vm stopped (%v) before the API was ready\nit said:\n%s\nconsole:\n%s", err, v.said.String(), v.console.String())
		default:
		}
		return m != nil
	})
	if m[2] != kubeconfig {
		t.Errorf("cairn vm named kubeconfig %s, want %s", m[2], kubeconfig)
	}
	t.Logf("cairn vm said: %s", m[1])
	var got string
	eventually(t, 5*time.Minute, "the line to list the nodes Ready", func() bool {
		b, _ := exec.Command("sh", "-c", m[1]).CombinedOutput()
		got = string(b)
		for _, n := range nodes {
			if !regexp.MustCompile(`(?m)^` + n + `\s+Ready\s`).MatchString(got) {
				return false
			}
		}
		return true
	})
	t.Logf("%s", got)
	if m[3] != "" {
		return m[3]
	}
	return "https://127.0.0.1:6443"
}

// interrupt is Ctrl-C: the terminal signals the whole foreground group.
// cairn vm must stop with all its VMs.
func (v *cairnVM) interrupt(t *testing.T) {
	t.Helper()
	syscall.Kill(-v.cmd.Process.Pid, syscall.SIGINT)
	select {
	case err := <-v.exited:
		if err != nil {
			t.Errorf("cairn vm after Ctrl-C: %v\n%s", err, v.said.String())
		}
	case <-time.After(time.Minute):
		t.Fatalf("cairn vm did not stop within a minute of Ctrl-C")
	}
	if err := syscall.Kill(-v.cmd.Process.Pid, 0); err != syscall.ESRCH {
		t.Errorf("a process of cairn vm outlived it (kill -0 of its group: %v)", err)
	}
}

// syncBuffer is a bytes.Buffer that a program writes while a test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// console is what a test reads of a VM's console: a qemu.VM's, or one of
// cairn vm's VMs'.
type console interface {
	Output() string
	WaitFor(s string, from int, timeout time.Duration) (int, error)
}

// lanConsole is the console of one of the VMs cairn vm boots on its LAN:
// the lines of its output that carry the VM's prefix, without it.
type lanConsole struct {
	v            *cairnVM
	name, prefix string
}

// node is the console of the VM named name (after its image file).
func (v *cairnVM) node(name string) *lanConsole {
	return &lanConsole{v: v, name: name, prefix: name + " "}
}

func (c *lanConsole) Output() string {
	var b strings.Builder
	for line := range strings.Lines(c.v.console.String()) {
		rest, ok := strings.CutPrefix(line, c.prefix)
		if !ok {
			continue
		}
		if rest, ok = strings.CutPrefix(strings.TrimLeft(rest, " "), "| "); ok {
			b.WriteString(rest)
		}
	}
	return b.String()
}

// WaitFor is qemu.VM's WaitFor, polling the output.
func (c *lanConsole) WaitFor(s string, from int, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	for {
		out := c.Output()
		if from <= len(out) {
			if i := strings.Index(out[from:], s); i >= 0 {
				return from + i + len(s), nil
			}
		}
		select {
		case err := <-c.v.exited:
			c.v.exited <- err
			return 0, fmt.Errorf("cairn vm stopped (%v) before %s printed %q", err, c.name, s)
		default:
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("no %q on the console of %s within %s", s, c.name, timeout)
		}
		time.Sleep(time.Second)
	}
}

// killQEMU kills the QEMU that cairn vm runs for image, as a power cut of
// that one machine.
func (v *cairnVM) killQEMU(t *testing.T, image string) {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		cmd, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(cmd, []byte("qemu-system")) || !bytes.Contains(cmd, []byte("file="+image+"\x00")) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("no QEMU runs %s", image)
}
