package pid1

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-os/cairn/configs"
)

func TestCopyCardConfig(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "cairn.yaml"), filepath.Join(dir, "copy.yaml")
	if n, err := copyCardConfig(src, dst); n != 0 || err != nil {
		t.Errorf("no card config: %d, %v", n, err)
	}
	small := []byte("apiVersion: cairn.dev/v1alpha1\nkind: Node\n")
	os.WriteFile(src, small, 0o644)
	if n, err := copyCardConfig(src, dst); n != len(small) || err != nil {
		t.Errorf("a small card config: %d, %v", n, err)
	}
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, small) {
		t.Errorf("copied %q", got)
	}
	os.Remove(dst)
	os.WriteFile(src, bytes.Repeat([]byte("#"), configs.MaxFileBytes+1), 0o644)
	n, err := copyCardConfig(src, dst)
	if n != 0 || err == nil || !strings.Contains(err.Error(), "not using cairn.yaml on the boot partition") || !strings.Contains(err.Error(), "larger than 1 MiB") {
		t.Errorf("an oversized card config: %d, %v", n, err)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Errorf("an oversized card config was copied: %v", err)
	}
}
