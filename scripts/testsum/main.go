// Command testsum reads `go test -json` on stdin and prints what a CI log
// needs: a line for each top-level test that took a second or more, a line
// per package, the whole output of every test or package that
// failed, and at the end the packages and the slowest tests by time (a
// test's time counts from when it says it started, see waitedLine) and,
// for each failure, the first lines of its last messages: a failed VM
// test's console fills thousands of lines after the message that says
// why, and a log's tail should still say it (with the message a test
// failed at, when it marks it: see firstFailed). It exits 1 when anything
// failed or no package reported.
//
//	go test -json ./... | go run ./scripts/testsum [-why FILE]
//
// With -why it also writes the failures' last messages to FILE (empty if
// none), for a log that prints other output after this one's.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"
)

// slow is how long a passing test runs before it gets a line of its own.
const slow = 1.0 // seconds

// event is one line of test2json's output.
type event struct {
	Action     string
	Package    string
	ImportPath string // build-output and build-fail
	Test       string
	Elapsed    float64
	Output     string
}

type result struct {
	name    string
	elapsed float64
	ok      bool
}

type summary struct {
	out      io.Writer
	logs     map[string]*strings.Builder // by package, or package + top-level test
	running  map[string]bool             // package + top-level test
	packages []result
	tests    []result
	failed   bool
	why      []string // per failure: its name and its messages' first lines
}

func main() {
	whyFile := flag.String("why", "", "also write the failures' last messages to this file")
	flag.Parse()
	s := &summary{out: os.Stdout, logs: map[string]*strings.Builder{}, running: map[string]bool{}}
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		s.line(sc.Bytes())
	}
	s.report()
	if *whyFile != "" {
		if err := os.WriteFile(*whyFile, []byte(strings.Join(s.why, "")), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "testsum:", err)
			os.Exit(1)
		}
	}
	if s.failed || len(s.packages) == 0 {
		os.Exit(1)
	}
}

func (s *summary) line(raw []byte) {
	var e event
	if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &e) != nil {
		fmt.Fprintf(s.out, "%s\n", raw) // go's own messages
		return
	}
	top, _, _ := strings.Cut(e.Test, "/")
	key := e.Package + " " + top
	if e.Test == "" {
		key = e.Package
	}
	switch e.Action {
	case "build-output":
		s.log(e.ImportPath, e.Output)
	case "build-fail":
		s.failed = true
		fmt.Fprintf(s.out, "build failed: %s\n%s", e.ImportPath, s.take(e.ImportPath))
	case "output":
		s.log(key, e.Output)
	case "run":
		if e.Test == top {
			s.running[key] = true
		}
	case "pass", "fail", "skip":
		if e.Test == "" {
			s.packageDone(e)
		} else if e.Test == top {
			s.testDone(e, key)
		}
	}
}

func (s *summary) log(key, text string) {
	if s.logs[key] == nil {
		s.logs[key] = &strings.Builder{}
	}
	s.logs[key].WriteString(text)
}

func (s *summary) take(key string) string {
	b := s.logs[key]
	delete(s.logs, key)
	if b == nil {
		return ""
	}
	return b.String()
}

// waitedLine is what a test logs when it waited for something before it
// started (internal/vmtest waits for cores): its time counts from then.
var waitedLine = regexp.MustCompile(`: waited (\S+) before it started`)

func (s *summary) testDone(e event, key string) {
	delete(s.running, key)
	log := s.take(key)
	waited := ""
	if m := waitedLine.FindStringSubmatch(log); m != nil {
		if d, err := time.ParseDuration(m[1]); err == nil && d.Seconds() <= e.Elapsed {
			e.Elapsed -= d.Seconds()
			waited = fmt.Sprintf(" (after %s waiting)", m[1])
		}
	}
	if e.Action == "fail" || e.Elapsed >= slow {
		fmt.Fprintf(s.out, "%s %-4s %s %.1fs%s\n", clock(), e.Action, e.Test, e.Elapsed, waited)
	}
	if e.Action == "fail" {
		s.failed = true
		fmt.Fprint(s.out, log)
		s.because(short(e.Package)+"."+e.Test, log)
	}
	if e.Action != "skip" {
		s.tests = append(s.tests, result{short(e.Package) + "." + e.Test, e.Elapsed, e.Action == "pass"})
	}
}

// packageDone prints the package's line; when it failed, also what it said
// outside any test (a panic, a timeout) and the logs of tests still running.
func (s *summary) packageDone(e event) {
	word := map[string]string{"pass": "ok  ", "fail": "FAIL", "skip": "?   "}[e.Action]
	fmt.Fprintf(s.out, "%s %s %s %.1fs\n", clock(), word, e.Package, e.Elapsed)
	log := s.take(e.Package)
	if e.Action == "fail" {
		s.failed = true
		for _, key := range slices.Sorted(maps.Keys(s.running)) {
			if strings.HasPrefix(key, e.Package+" ") {
				running := s.take(key)
				fmt.Fprintf(s.out, "--- still running: %s\n%s", key, running)
				s.because(short(strings.Replace(key, " ", ".", 1))+" (still running)", running)
			}
		}
		fmt.Fprint(s.out, log)
		s.because(short(e.Package), log)
	}
	s.packages = append(s.packages, result{e.Package, e.Elapsed, e.Action != "fail"})
}

func (s *summary) report() {
	byTime := func(a, b result) int {
		if a.elapsed != b.elapsed {
			if a.elapsed > b.elapsed {
				return -1
			}
			return 1
		}
		return strings.Compare(a.name, b.name)
	}
	slices.SortFunc(s.packages, byTime)
	slices.SortFunc(s.tests, byTime)
	fmt.Fprintln(s.out, "test packages by time:")
	for _, p := range s.packages {
		fmt.Fprintf(s.out, "  %7.1fs %s%s\n", p.elapsed, p.name, mark(p.ok))
	}
	fmt.Fprintln(s.out, "slowest tests:")
	for _, t := range s.tests[:min(len(s.tests), 15)] {
		fmt.Fprintf(s.out, "  %7.1fs %s%s\n", t.elapsed, t.name, mark(t.ok))
	}
	for _, w := range s.why {
		fmt.Fprint(s.out, w)
	}
}

// message is the first line of what a test said with t.Log, t.Error or
// t.Fatal (go test puts the file and line in front; the lines after it
// are indented further), or of a panic.
var message = regexp.MustCompile(`^(?:\s+[\w.-]+\.go:\d+: |panic: )`)

// why is how many of a failure's last messages the end of the output repeats.
const why = 10

// firstFailed is what a test logs (internal/vmtest does) as soon as it
// has failed: the message before it is the one it failed at, which the
// end of the output names even when more than why messages came after.
const firstFailed = "the test failed at the message above"

// because keeps, for the end of the output, the first lines of the last
// messages in a failed test's or package's log, each at most 300 bytes,
// and of the message it failed at when it logged firstFailed.
func (s *summary) because(name, log string) {
	var heads []string
	at := ""
	for line := range strings.Lines(log) {
		if !message.MatchString(line) {
			continue
		}
		line = strings.TrimSpace(line)
		if strings.HasSuffix(line, ": "+firstFailed) {
			if at == "" && len(heads) > 0 {
				at = heads[len(heads)-1]
			}
			continue
		}
		if len(line) > 300 {
			line = line[:300] + "..."
		}
		heads = append(heads, line)
	}
	if len(heads) == 0 {
		return
	}
	var b strings.Builder
	if at != "" {
		fmt.Fprintf(&b, "%s failed first at (its first line):\n    %s\n", name, at)
	}
	fmt.Fprintf(&b, "%s failed; its last messages (first lines):\n", name)
	for _, h := range heads[max(0, len(heads)-why):] {
		fmt.Fprintf(&b, "    %s\n", h)
	}
	s.why = append(s.why, b.String())
}

func mark(ok bool) string {
	if ok {
		return ""
	}
	return " FAILED"
}

func short(pkg string) string { return strings.TrimPrefix(pkg, "github.com/cairn-os/cairn/") }

func clock() string { return time.Now().UTC().Format("15:04:05") }
