package bundle

import (
	"crypto/ed25519"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cairn-os/cairn/boot"
	"github.com/cairn-os/cairn/boot/bundle"
	"github.com/cairn-os/cairn/boot/family"
)

// TestWriteReadsBack writes a bundle of a slot and reads it with the
// node's reader: the files come in the order the family installs them,
// with their content.
func TestWriteReadsBack(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o644)
		return p
	}
	home, _ := family.Of(boot.UEFI)
	s, err := home.Slot(&family.Parts{Kernel: file("k", "kernel"), Initrd: []byte("initramfs"), Root: file("r", "hsqs root"),
		Console: []string{"ttyAMA0"}, Version: "v2", Epoch: time.Unix(1780000000, 0)})
	if err != nil {
		t.Fatal(err)
	}
	pub, key, _ := ed25519.GenerateKey(nil)
	out := filepath.Join(dir, "v2.cairnb")
	if err := Write(s, &bundle.Manifest{Board: "qemu-arm64", Arch: "arm64", Version: "v2", Build: 1780000000}, key, out, nil); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(out)
	defer f.Close()
	r, err := bundle.NewReader(f, []ed25519.PublicKey{pub})
	if err != nil {
		t.Fatal(err)
	}
	if r.Manifest.Family != boot.UEFI || !slices.Equal(r.Manifest.Console, []string{"ttyAMA0"}) {
		t.Errorf("manifest %+v", r.Manifest)
	}
	var names []string
	for {
		f, c, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, c); err != nil {
			t.Fatal(err)
		}
		names = append(names, f.Name)
	}
	if want := []string{family.Kernel, family.Initrd, family.Root}; !slices.Equal(names, want) {
		t.Errorf("files %v, want %v", names, want)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".v2*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
