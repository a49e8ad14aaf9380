package pid1

import (
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/u-root/u-root/pkg/kmodule"
)

// TestModuleResolution resolves modules against a made-up modules.dep
// without loading any: dependencies first, '-' and '_' alike, built-ins
// and loaded modules fine, missing ones reported by name.
func TestModuleResolution(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "lib/modules/9.9.9-test")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "modules.dep"), []byte("kernel/net/a.ko: kernel/net/b.ko kernel/lib/c.ko\nkernel/net/b.ko: kernel/lib/c.ko\nkernel/lib/c.ko:\nkernel/fs/d-x.ko:\nkernel/fs/nls/nls_iso8859-1.ko: kernel/lib/c.ko\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "modules.builtin"), []byte("kernel/fs/ext4.ko\n"), 0o644)
	var mu sync.Mutex
	var loaded []string
	opts := kmodule.ProbeOpts{RootDir: root, KVer: "9.9.9-test", IgnoreProcMods: true, DryRunCB: func(p string) {
		mu.Lock()
		loaded = append(loaded, strings.TrimPrefix(p, dir+"/"))
		mu.Unlock()
	}}
	// nls_iso8859-1 mixes '-' and '_', which kmodule's lookup misses.
	err := loadModules(slog.New(slog.DiscardHandler), opts, []string{"a", "d_x", "ext4", "missing", "nls_iso8859-1"})
	if err == nil || !strings.Contains(err.Error(), "missing") || strings.Contains(err.Error(), "ext4") || strings.Contains(err.Error(), "nls") {
		t.Errorf("error %v, want one naming missing alone", err)
	}
	want := []string{"kernel/lib/c.ko", "kernel/net/b.ko", "kernel/net/a.ko", "kernel/fs/d-x.ko", "kernel/fs/nls/nls_iso8859-1.ko"}
	if !slices.Equal(loaded, want) {
		t.Errorf("loaded %v, want %v", loaded, want)
	}
	names, err := listedModules(opts)
	if err != nil || !slices.Equal(names, []string{"a", "b", "c", "d-x", "nls_iso8859-1"}) {
		t.Errorf("listed %v, %v", names, err)
	}
}
