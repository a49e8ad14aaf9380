package build

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/cairn-os/cairn/image/apt"
	"github.com/cairn-os/cairn/image/deb/debtest"
)

// TestLocalDebsKeyedByContent: two --debs folders with different files of
// one name and version, built with one cache, each get their own files.
func TestLocalDebsKeyedByContent(t *testing.T) {
	const control = "Package: tool\nVersion: 1.0\nArchitecture: arm64\n"
	cache := t.TempDir()
	for _, body := range []string{"the first", "the second"} {
		folder := t.TempDir()
		data := debtest.Deb(t, control, ".gz", debtest.File("./usr/bin/tool", body))
		if err := os.WriteFile(filepath.Join(folder, "tool_1.0_arm64.deb"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		ix, err := apt.LocalIndex(folder, "arm64")
		if err != nil {
			t.Fatal(err)
		}
		s := &supply{client: &apt.Client{Arch: "arm64", Cache: cache, Log: slog.New(slog.DiscardHandler)}, index: ix}
		p, err := s.lookup("tool", "")
		if err != nil {
			t.Fatal(err)
		}
		dir, err := s.unpack(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(filepath.Join(dir, "usr/bin/tool")); string(got) != body {
			t.Errorf("the package with %q unpacks to %q", body, got)
		}
	}
}
