package cli

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestKeysAndNodeVerbs(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("CAIRN_FLEET", filepath.Join(dir, "fleet"))
	if out, err := run("status", "--node", "127.0.0.1:1"); err == nil || !strings.Contains(out+err.Error(), "cairn keys generate") {
		t.Errorf("status without fleet keys: %v %q", err, out)
	}
	out, err := run("keys", "generate")
	if err != nil || !strings.Contains(out, "update.publicKeys): ") {
		t.Fatalf("keys generate: %v %q", err, out)
	}
	if _, err := run("keys", "generate"); Code(err) != 2 || !strings.Contains(err.Error(), "will not replace them") {
		t.Errorf("keys generate again: code %d, %v", Code(err), err)
	}
	if _, err := run("upgrade", filepath.Join(dir, "missing.cairnb"), "--node", "127.0.0.1"); Code(err) != 2 {
		t.Errorf("upgrade of a missing file: code %d, %v", Code(err), err)
	}
	// Nothing listens on port 1: the error names the node and the likely cause.
	if _, err := run("status", "--node", "127.0.0.1:1", "--timeout", "2s"); err == nil || !strings.Contains(err.Error(), "node 127.0.0.1:1") {
		t.Errorf("status of a node that is not there: %v", err)
	}
}
