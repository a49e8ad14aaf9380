package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A failed test whose cleanup logs a long console after the message that
// says why: the output's last lines still say why.
func TestWhyComesLast(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/failing\n\ngo 1.22\n")
	write("x_test.go", `package failing

import (
	"strings"
	"testing"
)

func TestFine(t *testing.T) {}

func TestBoot(t *testing.T) {
	t.Cleanup(func() { t.Logf("console:\n%s", strings.Repeat("a console line\n", 500)) })
	t.Log("booted")
	t.Fatalf("waited 1m0s for the pod to serve\nwith a second line")
}
`)
	test := exec.Command("go", "test", "-json", ".")
	test.Dir = dir
	test.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off")
	events, _ := test.Output() // it fails, as it should
	var out bytes.Buffer
	s := &summary{out: &out, logs: map[string]*strings.Builder{}, running: map[string]bool{}}
	for line := range bytes.Lines(events) {
		s.line(bytes.TrimSuffix(line, []byte("\n")))
	}
	s.report()
	if !s.failed {
		t.Fatalf("the summary of a failed run did not fail:\n%s", out.String())
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	tail := strings.Join(lines[max(0, len(lines)-4):], "\n")
	want := "example.com/failing.TestBoot failed; its last messages (first lines):\n" +
		"    x_test.go:12: booted\n" +
		"    x_test.go:13: waited 1m0s for the pod to serve\n" +
		"    x_test.go:11: console:"
	if tail != want {
		t.Errorf("the output ends with\n%s\nwant\n%s", tail, want)
	}
	if !strings.Contains(out.String(), strings.Repeat("        a console line\n", 500)) {
		t.Error("the failed test's whole log is not in the output")
	}
}
