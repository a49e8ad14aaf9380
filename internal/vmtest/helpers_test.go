package vmtest

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-os/cairn/internal/cli"
)

var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

// TestMain runs these tests only when CAIRN_VMTEST is set (make test sets
// it): they build the device binaries, Kubernetes for arm64 among them,
// and boot VMs, so a plain go test ./... leaves them out.
func TestMain(m *testing.M) {
	if os.Getenv("CAIRN_VMTEST") == "" {
		fmt.Println("vmtest: skipped; these tests build the device binaries and boot VMs: run make test, or set CAIRN_VMTEST=1")
		os.Exit(0)
	}
	// Every image's build time, unless a test sets its own (t.Setenv in a
	// test would keep it from running in parallel with others).
	os.Setenv("SOURCE_DATE_EPOCH", "1780000000")
	// turn, not -parallel, says how many tests run at once: each waits
	// for cores for its VMs.
	flag.Parse()
	flag.Set("test.parallel", "1000")
	os.Exit(m.Run())
}

// deviceBinaries brings the binaries the tests boot up to date with `make
// test-binaries` (incremental: a no-op under `make test`, which has just run
// it) and returns the bin folder. The Makefile alone knows how cairnd is
// built (cgo for SQLite, Kubernetes version stamps) and which architectures
// the tests need it for.
func deviceBinaries(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		root, err := filepath.Abs("../..")
		if err != nil {
			binErr = err
			return
		}
		cmd := exec.Command("make", "-C", root, "test-binaries")
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("make test-binaries: %v\n%s", err, out)
			return
		}
		binDir = filepath.Join(root, "bin")
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binDir
}

// cairn runs the CLI in-process.
func cairn(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := cli.Run(context.Background(), args, &out, &errb)
	return out.String() + errb.String(), err
}

// cairnProgram runs bin/cairn (as make test-binaries built it) with env
// added to the test's environment. Its error has what the program said.
func cairnProgram(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(deviceBinaries(t), "cairn"), args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("%w: %s", err, strings.TrimSpace(errb.String()))
	}
	return out.String() + errb.String(), err
}

// buildImage builds an image for board from a config text.
func buildImage(t *testing.T, board, config, dir string, extra ...string) string {
	t.Helper()
	return buildImageEnv(t, nil, board, config, dir, extra...)
}

// buildImageEnv is buildImage through bin/cairn with env added to its
// environment, as a user runs it; buildImage runs the CLI in the test's
// process.
func buildImageEnv(t *testing.T, env []string, board, config, dir string, extra ...string) string {
	t.Helper()
	cfg := filepath.Join(dir, board+".yaml")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, board+".img")
	args := append([]string{"build", "--board", board, "--config", cfg, "--output", img, "--bin-dir", deviceBinaries(t)}, extra...)
	run := cairn
	if env != nil {
		run = func(t *testing.T, args ...string) (string, error) { return cairnProgram(t, env, args...) }
	}
	out, err := run(t, args...)
	if err != nil {
		t.Fatalf("cairn build --board %s: %v\n%s", board, err, out)
	}
	t.Logf("%s", out)
	return img
}

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: run `make deps` (the tests install their tools through it)", tool)
		}
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

type sfPart struct {
	Node  string `json:"node"`
	Start int64  `json:"start"`
	Size  int64  `json:"size"`
	Type  string `json:"type"`
	Name  string `json:"name"`
}

// partitions reads an image's table with sfdisk.
func partitions(t *testing.T, img string) (string, []sfPart) {
	var doc struct {
		Table struct {
			Label      string   `json:"label"`
			ID         string   `json:"id"`
			Partitions []sfPart `json:"partitions"`
		} `json:"partitiontable"`
	}
	raw, err := exec.Command("sfdisk", "--json", img).Output()
	if err != nil {
		t.Fatalf("sfdisk --json: %v", err)
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Table.Label, doc.Table.Partitions
}

// extract copies a partition out of an image into its own file, sparse
// where the partition holds zeros.
func extract(t *testing.T, img string, p sfPart) string {
	t.Helper()
	in, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out := filepath.Join(t.TempDir(), filepath.Base(p.Node)+".part")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := io.NewSectionReader(in, p.Start*512, p.Size*512)
	buf := make([]byte, 1<<20)
	for off := int64(0); ; {
		n, err := io.ReadFull(r, buf)
		if n > 0 && slices.ContainsFunc(buf[:n], func(b byte) bool { return b != 0 }) {
			if _, werr := f.WriteAt(buf[:n], off); werr != nil {
				t.Fatalf("extracting %s: %v", out, werr)
			}
		}
		off += int64(n)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(p.Size * 512); err != nil {
		t.Fatal(err)
	}
	return out
}

// ntpServer answers NTP requests on loopback with a fixed time, so a guest
// that sets its clock from it shows that time.
func ntpServer(t *testing.T, now time.Time) string {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 128)
		for {
			n, addr, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			if n < 48 {
				continue
			}
			resp := make([]byte, 48)
			resp[0] = 0<<6 | 4<<3 | 4 // no leap warning, version 4, server
			resp[1] = 1               // stratum 1
			resp[2] = 4
			resp[3] = 0xEC
			binary.BigEndian.PutUint32(resp[8:], 1<<10) // root dispersion ~ 15 ms
			copy(resp[12:], "CRN\x00")
			ts := func(at int, tm time.Time) {
				secs := uint64(tm.Unix() + 2208988800)
				frac := uint64(tm.Nanosecond()) << 32 / 1e9
				binary.BigEndian.PutUint32(resp[at:], uint32(secs))
				binary.BigEndian.PutUint32(resp[at+4:], uint32(frac))
			}
			ts(16, now.Add(-time.Second))
			copy(resp[24:32], buf[40:48])
			ts(32, now)
			ts(40, now)
			conn.WriteTo(resp, addr)
		}
	}()
	return conn.LocalAddr().String()
}

func hostArchIs(arch string) bool { return runtime.GOARCH == arch }

// onBootPartition writes a file onto the image's first (FAT) partition with
// mtools, as a user would from any OS after flashing.
func onBootPartition(t *testing.T, img, name, content string) {
	t.Helper()
	_, parts := partitions(t, img)
	src := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(src, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "mcopy", "-o", "-i", fmt.Sprintf("%s@@%d", img, parts[0].Start*512), src, "::"+name)
}
