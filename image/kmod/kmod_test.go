package kmod

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The test reads a real Debian kernel's module tree when one is in the
// build cache (CAIRN_TEST_KERNEL_TREE points at its extracted root).
func TestRealKernelClosure(t *testing.T) {
	root := os.Getenv("CAIRN_TEST_KERNEL_TREE")
	if root == "" {
		matches, _ := filepath.Glob(filepath.Join(os.Getenv("HOME"), ".cache/cairn/extract/*/lib/modules/*/kernel/fs/squashfs"))
		if len(matches) == 0 {
			t.Skip("no extracted Debian kernel in the cache yet; the image build test fetches one")
		}
		root = strings.SplitN(matches[0], "/lib/modules/", 2)[0]
	}
	tr, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	files, err := tr.Closure([]string{"ext4", "virtio-blk"})
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(files, " ")
	for _, want := range []string{"kernel/fs/ext4/ext4.ko", "kernel/fs/jbd2/jbd2.ko", "kernel/fs/mbcache.ko"} {
		if !strings.Contains(joined, want) {
			t.Errorf("closure lacks %s: %s", want, joined)
		}
	}
	dep, err := tr.DepFile(files)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(dep), "kernel/fs/ext4/ext4.ko: ") || !strings.Contains(string(dep), "kernel/fs/jbd2/jbd2.ko") {
		t.Errorf("modules.dep:\n%s", dep)
	}
	if _, _, err := tr.Path("no_such_module"); err == nil {
		t.Error("unknown module accepted")
	}
}
