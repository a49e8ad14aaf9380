package deb

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairn-os/cairn/internal/limited"
)

const control = "Package: hello\nVersion: 1.0-1\nArchitecture: arm64\nDescription: greets\n the world\n"

// TestRoundTrip reads the control stanza and unpacks a well-formed package,
// in each compression, with the links a real package has.
func TestRoundTrip(t *testing.T) {
	for _, ext := range []string{".gz", ".xz", ".zst", ""} {
		path := writeDeb(t, debBytes(t, control, ext,
			dir("./"), dir("./usr/"), dir("./usr/bin/"),
			m{Name: "./usr/bin/hello", Type: '0', Body: "#!/bin/sh\n", Mode: 0o4755},
			hardlink("./usr/bin/hi", "./usr/bin/hello"),
			symlink("./usr/bin/hey", "hello"),
			symlink("./usr/bin/sh", "/usr/bin/dash"), // meant for the target system
			file("./usr/share/doc/hello/copyright", "GPL"),
		))
		c, err := Control(path)
		if err != nil {
			t.Fatal(err)
		}
		if c["Package"] != "hello" || c["Version"] != "1.0-1" || c["Description"] != "greets\nthe world" {
			t.Errorf("%s: control %q", ext, c)
		}
		dest := filepath.Join(t.TempDir(), "out", "hello")
		if err := Extract(path, dest); err != nil {
			t.Fatalf("%s: %v", ext, err)
		}
		for name, want := range map[string]string{"usr/bin/hello": "#!/bin/sh\n", "usr/bin/hi": "#!/bin/sh\n", "usr/share/doc/hello/copyright": "GPL"} {
			if got, err := os.ReadFile(filepath.Join(dest, name)); err != nil || string(got) != want {
				t.Errorf("%s: %s = %q, %v", ext, name, got, err)
			}
		}
		if st, _ := os.Stat(filepath.Join(dest, "usr/bin/hello")); st.Mode() != 0o755 {
			t.Errorf("%s: hello has mode %v, want 0755 (no setuid on the build host)", ext, st.Mode())
		}
		for name, want := range map[string]string{"usr/bin/hey": "hello", "usr/bin/sh": "/usr/bin/dash"} {
			if got, err := os.Readlink(filepath.Join(dest, name)); got != want {
				t.Errorf("%s: link %s -> %q (%v), want %q", ext, name, got, err, want)
			}
		}
	}
}

// TestExtractStaysInside unpacks hostile packages next to a folder that
// stands for the rest of the build host, and checks that nothing there is
// written, created or truncated.
func TestExtractStaysInside(t *testing.T) {
	for _, tc := range []struct {
		name    string
		members func(outside string) []m
		unsafe  bool     // refused with ErrUnsafe; else extracted
		inside  []string // regular files the extraction must hold; $OUTSIDE is the outside folder's path
	}{
		{"file through an absolute symlink", func(o string) []m {
			return []m{symlink("evil", o), file("evil/pwned", "x")}
		}, true, nil},
		{"file through a relative symlink", func(string) []m {
			return []m{symlink("evil", "../../../outside"), file("evil/pwned", "x")}
		}, true, nil},
		{"folder through a symlink", func(o string) []m {
			return []m{symlink("evil", o), dir("evil/sub/")}
		}, true, nil},
		{"hard link climbing out, then a file of its name", func(string) []m {
			return []m{hardlink("h", "../../../outside/victim"), file("h", "")}
		}, true, nil},
		{"hard link to an absolute path", func(o string) []m {
			return []m{hardlink("h", o+"/victim"), file("h", "")}
		}, true, nil}, // the target is taken inside, where there is none
		{"hard link to a symlink that points out", func(o string) []m {
			return []m{symlink("s", o+"/victim"), hardlink("h", "s"), file("h", "")}
		}, true, nil},
		{"name climbing out", func(string) []m {
			return []m{file("../../../outside/pwned", "x")}
		}, true, nil},
		{"name climbing out from a folder", func(string) []m {
			return []m{dir("usr/"), file("usr/../../../../outside/pwned", "x")}
		}, true, nil},
		{"absolute name", func(o string) []m {
			return []m{file(o+"/pwned", "x")}
		}, false, []string{"$OUTSIDE/pwned"}},
		{"file over a symlink that points out", func(o string) []m {
			return []m{symlink("lnk", o+"/victim"), file("lnk", "")}
		}, false, []string{"lnk"}},
		{"file over an inside hard link", func(string) []m {
			return []m{file("a", "keep"), hardlink("b", "a"), file("b", "")}
		}, false, []string{"a", "b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			outside := filepath.Join(base, "outside")
			victim := filepath.Join(outside, "victim")
			os.Mkdir(outside, 0o755)
			os.WriteFile(victim, []byte("keep"), 0o644)
			members := tc.members(outside)
			// dest is base/x/y/pkg and the work folder base/x/y/.extract-*:
			// ../../../outside from either is the outside folder.
			dest := filepath.Join(base, "x", "y", "pkg")
			err := Extract(writeDeb(t, debBytes(t, control, ".gz", members...)), dest)
			if got, _ := os.ReadFile(victim); string(got) != "keep" {
				t.Errorf("the file outside now holds %q", got)
			}
			if names, _ := os.ReadDir(outside); len(names) != 1 {
				t.Errorf("the folder outside now holds %v", names)
			}
			if tc.unsafe {
				if !errors.Is(err, ErrUnsafe) {
					t.Fatalf("Extract = %v, want ErrUnsafe", err)
				}
				if left, _ := os.ReadDir(filepath.Dir(dest)); len(left) != 0 {
					t.Errorf("a refused extraction left %v", left)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range tc.inside {
				name = strings.ReplaceAll(name, "$OUTSIDE", outside)
				if st, err := os.Lstat(filepath.Join(dest, name)); err != nil || !st.Mode().IsRegular() {
					t.Errorf("%s is not a file inside: %v", name, err)
				}
			}
			if got, _ := os.ReadFile(filepath.Join(dest, "a")); len(tc.inside) == 2 && string(got) != "keep" {
				t.Errorf("a file that shared a hard link now holds %q", got)
			}
		})
	}
}

// TestLimits checks the caps on what a package may make the build read
// and write.
func TestLimits(t *testing.T) {
	huge := strings.Repeat("x", maxControl+1)
	_, err := Control(writeDeb(t, debBytes(t, "Package: a\nDescription: "+huge, ".gz")))
	if !errors.Is(err, limited.ErrTooLarge) || !errors.Is(err, ErrFormat) {
		t.Errorf("huge control file: %v", err)
	}
	for _, name := range []string{"./" + strings.Repeat("n", maxName), "./" + strings.Repeat("d/", maxDepth+1) + "f"} {
		err := Extract(writeDeb(t, debBytes(t, control, ".gz", file(name, "x"))), filepath.Join(t.TempDir(), "d"))
		if !errors.Is(err, ErrUnsafe) || !strings.Contains(err.Error(), "longer than") {
			t.Errorf("a member named %.20s...: %v, want a refusal of its name", name, err)
		}
	}
	defer func(b int64, n int) { maxExtracted, maxMembers = b, n }(maxExtracted, maxMembers)
	maxExtracted, maxMembers = 10, 3
	for _, members := range [][]m{
		{file("a", "123456"), file("b", "123456")},
		{dir("a/"), dir("b/"), dir("c/"), dir("d/")},
	} {
		err := Extract(writeDeb(t, debBytes(t, control, ".zst", members...)), filepath.Join(t.TempDir(), "d"))
		if !errors.Is(err, limited.ErrTooLarge) {
			t.Errorf("%d members: %v, want ErrTooLarge", len(members), err)
		}
	}
}

// TestBadArchive feeds ar headers that lie about sizes; the reader must
// refuse them, not loop.
func TestBadArchive(t *testing.T) {
	neg := []byte("!<arch>\ndebian-binary/  0           0     0     644     -60       `\n")
	past := arArchive("debian-binary", "2.0\n")
	past = slices.Concat(past, []byte("data.tar/       0           0     0     644     99999     `\n"))
	for _, data := range [][]byte{neg, past, []byte("!<arch>\n"), []byte("hello")} {
		path, dest := writeDeb(t, data), filepath.Join(t.TempDir(), "d")
		done := make(chan error, 1)
		go func() { done <- Extract(path, dest) }()
		select {
		case err := <-done:
			if !errors.Is(err, ErrFormat) {
				t.Errorf("%q: %v, want ErrFormat", data, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%q: the reader loops", data)
		}
	}
}
