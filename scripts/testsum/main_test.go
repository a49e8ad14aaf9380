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
	out := summarize(t, `package failing

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
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	tail := strings.Join(lines[max(0, len(lines)-4):], "\n")
	want := "example.com/failing.TestBoot failed; its last messages (first lines):\n" +
		"    x_test.go:12: booted\n" +
		"    x_test.go:13: waited 1m0s for the pod to serve\n" +
		"    x_test.go:11: console:"
	if tail != want {
		t.Errorf("the output ends with\n%s\nwant\n%s", tail, want)
	}
	if !strings.Contains(out, strings.Repeat("        a console line\n", 500)) {
		t.Error("the failed test's whole log is not in the output")
	}
}

// A test that failed with a t.Error and went on to log more than the end
// of the output repeats: the message it failed at is named, by the line
// internal/vmtest logs once a test has failed.
func TestFirstFailureIsNamed(t *testing.T) {
	out := summarize(t, `package failing

import "testing"

func TestSoft(t *testing.T) {
	t.Log("booted")
	t.Errorf("the agent failed 1 join\nconsole: ...")
	t.Log("`+firstFailed+`")
	for i := range 20 {
		t.Logf("step %d", i)
	}
}
`)
	want := "example.com/failing.TestSoft failed first at (its first line):\n" +
		"    x_test.go:7: the agent failed 1 join\n" +
		"example.com/failing.TestSoft failed; its last messages (first lines):\n"
	if !strings.Contains(out, want) {
		t.Errorf("the output does not name the message the test failed at:\n%s", out)
	}
	if _, last, _ := strings.Cut(out, want); strings.Contains(last, firstFailed) {
		t.Errorf("the mark is among the last messages:\n%s", out)
	}
}

// summarize runs go test -json on a package of one test file, src, which
// fails, and returns testsum's summary of it.
func summarize(t *testing.T, src string) string {
	t.Helper()
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/failing\n\ngo 1.22\n")
	write("x_test.go", src)
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
	return out.String()
}
