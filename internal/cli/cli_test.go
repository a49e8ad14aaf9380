package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func run(args ...string) (string, error) {
	var out bytes.Buffer
	err := Run(context.Background(), args, &out, &out)
	return out.String(), err
}

func TestConfigValidateExitCodes(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(good, []byte("apiVersion: cairn.dev/v1alpha1\nkind: Node\n"), 0o644)
	os.WriteFile(bad, []byte("apiVersion: cairn.dev/v1alpha1\nkind: Node\nhostname: Not_Valid\n"), 0o644)
	if out, err := run("config", "validate", good); err != nil || !strings.Contains(out, "good.yaml: valid") {
		t.Fatalf("good: %v %s", err, out)
	}
	out, err := run("config", "validate", bad)
	if Code(err) != 2 || !strings.Contains(out, "bad.yaml:3:11: hostname: \"Not_Valid\" is not a valid host name") {
		t.Fatalf("bad: code %d, %q", Code(err), out)
	}
	if _, err := run("config", "validate", filepath.Join(dir, "missing.yaml")); Code(err) != 2 {
		t.Fatalf("missing file: code %d (%v)", Code(err), err)
	}
	// A card's cairn.yaml laid over the image's config.
	card := filepath.Join(dir, "cairn.yaml")
	os.WriteFile(card, []byte("apiVersion: cairn.dev/v1alpha1\nkind: Node\ncluster:\n  role: agent\n"), 0o644)
	if out, err := run("config", "validate", "--base", good, card); Code(err) != 2 || !strings.Contains(out, "cairn.yaml:4:") {
		t.Fatalf("layered: code %d, %q", Code(err), out)
	}
	os.WriteFile(card, []byte("apiVersion: cairn.dev/v1alpha1\nkind: Node\nhostname: edge-1\n"), 0o644)
	if out, err := run("config", "validate", "--base", good, card); err != nil || !strings.Contains(out, "cairn.yaml: valid") {
		t.Fatalf("layered good: %v %s", err, out)
	}
	if _, err := run("build", "--no-such-flag"); Code(err) != 2 {
		t.Fatalf("bad flag: code %d", Code(err))
	}
	for _, args := range [][]string{{"build", "--board", "rpi9"}, {"build", "--config", bad}} {
		if _, err := run(args...); Code(err) != 2 {
			t.Errorf("%v: code %d (%v), want 2", args, Code(err), err)
		}
	}
	t.Setenv("SOURCE_DATE_EPOCH", "yesterday")
	if _, err := run("build", "-o", filepath.Join(dir, "x.img")); Code(err) != 2 || !strings.Contains(err.Error(), "SOURCE_DATE_EPOCH") {
		t.Errorf("bad SOURCE_DATE_EPOCH: code %d (%v), want 2", Code(err), err)
	}
}

func TestSchemaAndBoards(t *testing.T) {
	out, err := run("config", "schema")
	if err != nil || !strings.Contains(out, `"apiVersion"`) {
		t.Fatalf("schema: %v %s", err, out)
	}
	out, err = run("boards")
	if err != nil || !strings.Contains(out, "rpi3") || !strings.Contains(out, "rpi-uboot") {
		t.Fatalf("boards: %v %s", err, out)
	}
}

func TestWrongArgumentsAreBadInput(t *testing.T) {
	for _, args := range [][]string{{"flash", "x.img"}, {"vm"}, {"build", "extra"}, {"keys", "generate", "extra"}} {
		_, err := run(args...)
		if Code(err) != 2 || !strings.Contains(err.Error(), "--help`") {
			t.Errorf("%v: exit %d, %v", args, Code(err), err)
		}
	}
}
