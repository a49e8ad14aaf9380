package vmtest

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"regexp"
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
	board, err := boards.Get("qemu-arm64")
	if err != nil {
		t.Fatal(err)
	}
	need(t, board.QEMU.Binary)
	t.Parallel()
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

	cmd := exec.Command(filepath.Join(deviceBinaries(t), "cairn"), "vm", img)
	cmd.Env = append(cmd.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var console, said syncBuffer
	cmd.Stdout, cmd.Stderr = &console, &said
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })

	line := regexp.MustCompile(`\n    (.+ --kubeconfig (\S+) get nodes)\r\n`)
	var m []string
	eventually(t, serverTimeout, "cairn vm to say the kubectl line", func() bool {
		m = line.FindStringSubmatch(said.String())
		select {
		case err := <-exited:
			t.Fatalf("cairn vm stopped (%v) before the API was ready\nit said:\n%s\nconsole:\n%s", err, said.String(), console.String())
		default:
		}
		return m != nil
	})
	if m[2] != kubeconfig {
		t.Errorf("cairn vm named kubeconfig %s, want %s", m[2], kubeconfig)
	}
	t.Logf("cairn vm said: %s", m[1])
	// The node registers a moment after the API is ready.
	var got string
	eventually(t, 5*time.Minute, "the line to list the node Ready", func() bool {
		b, _ := exec.Command("sh", "-c", m[1]).CombinedOutput()
		got = string(b)
		return regexp.MustCompile(`(?m)^cairn-demo\s+Ready\s`).MatchString(got)
	})
	t.Logf("%s", got)
	if !strings.Contains(console.String(), "cairn: ready slot=a") {
		t.Errorf("cairn vm did not show the console on its output:\n%s", console.String())
	}

	// Ctrl-C: the terminal signals the whole foreground group.
	syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("cairn vm after Ctrl-C: %v\n%s", err, said.String())
		}
	case <-time.After(time.Minute):
		t.Fatalf("cairn vm did not stop within a minute of Ctrl-C")
	}
	if err := syscall.Kill(-cmd.Process.Pid, 0); err != syscall.ESRCH {
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
