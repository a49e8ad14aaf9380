package bundle

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"io"
	"math/rand"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cairn-os/cairn/boot"
)

// testBundle returns a bundle of two files signed by a new key, and the key.
func testBundle(t testing.TB) ([]byte, ed25519.PublicKey, map[string][]byte) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 300<<10)
	rand.New(rand.NewSource(1)).Read(big)
	files := map[string][]byte{"vmlinuz": []byte("kernel"), "root.squashfs": big}
	m := &Manifest{Board: "qemu-arm64", Family: boot.UEFI, Arch: "arm64", Version: "v2", Build: 2}
	for _, n := range []string{"vmlinuz", "root.squashfs"} {
		f, err := Describe(n, bytes.NewReader(files[n]))
		if err != nil {
			t.Fatal(err)
		}
		m.Files = append(m.Files, f)
	}
	var out bytes.Buffer
	open := func(n string) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(files[n])), nil }
	if err := Write(&out, m, priv, time.Unix(1, 0), open); err != nil {
		t.Fatal(err)
	}
	return out.Bytes(), pub, files
}

// readAll reads every file of a bundle and returns their contents.
func readAll(b []byte, keys ...ed25519.PublicKey) (map[string][]byte, error) {
	r, err := NewReader(bytes.NewReader(b), keys)
	if err != nil {
		return nil, err
	}
	got := map[string][]byte{}
	for {
		f, c, err := r.Next()
		if err == io.EOF {
			return got, nil
		}
		if err != nil {
			return got, err
		}
		data, err := io.ReadAll(c)
		if err != nil {
			return got, err
		}
		got[f.Name] = data
	}
}

func TestRoundTrip(t *testing.T) {
	b, pub, files := testBundle(t)
	got, err := readAll(b, pub)
	if err != nil {
		t.Fatal(err)
	}
	for n, want := range files {
		if !bytes.Equal(got[n], want) {
			t.Errorf("%s: %d bytes back, want %d", n, len(got[n]), len(want))
		}
	}
}

func TestRefusesOtherKeys(t *testing.T) {
	b, _, _ := testBundle(t)
	other, _, _ := ed25519.GenerateKey(nil)
	if _, err := readAll(b, other); !errors.Is(err, ErrSignature) {
		t.Errorf("another key: %v, want ErrSignature", err)
	}
	if _, err := readAll(b); !errors.Is(err, ErrSignature) || !strings.Contains(err.Error(), "update.publicKeys") {
		t.Errorf("no key: %v, want ErrSignature naming update.publicKeys", err)
	}
}

// TestRefusesChanges flips one byte at a time across the bundle: each
// change is refused, by the signature when it hits the manifest, by the
// content check when it hits a file; none reads back clean.
func TestRefusesChanges(t *testing.T) {
	b, pub, _ := testBundle(t)
	for off := 0; off < len(b); off += 997 {
		c := bytes.Clone(b)
		c[off] ^= 0x20
		_, err := readAll(c, pub)
		if err == nil {
			// A flip in tar padding or an unused header field changes nothing read.
			if _, err2 := readAll(b, pub); err2 != nil {
				t.Fatal(err2)
			}
			continue
		}
		if !errors.Is(err, ErrSignature) && !errors.Is(err, ErrContent) && !errors.Is(err, ErrFormat) {
			t.Errorf("byte %d changed: %v, want one of the bundle's errors", off, err)
		}
	}
	// A change in a file's content is always caught.
	i := bytes.Index(b, []byte("kernel"))
	c := bytes.Clone(b)
	c[i] = 'K'
	if _, err := readAll(c, pub); !errors.Is(err, ErrContent) || !strings.Contains(err.Error(), "vmlinuz has sha256") {
		t.Errorf("changed kernel: %v", err)
	}
}

func TestRefusesTruncated(t *testing.T) {
	b, pub, _ := testBundle(t)
	for _, n := range []int{0, 100, 512, 1500, 2600, len(b) / 2, len(b) - 1030} {
		_, err := readAll(b[:n], pub)
		if !errors.Is(err, ErrContent) && !errors.Is(err, ErrFormat) {
			t.Errorf("cut at %d of %d: %v, want ErrContent or ErrFormat", n, len(b), err)
		}
	}
}

func TestManifestChecks(t *testing.T) {
	good := func() *Manifest {
		return &Manifest{Format: Format, Family: boot.UEFI, Files: []File{{Name: "vmlinuz", SHA256: strings.Repeat("0", 64)}}}
	}
	for name, change := range map[string]func(m *Manifest){
		"format":    func(m *Manifest) { m.Format = 2 },
		"family":    func(m *Manifest) { m.Family = "bios" },
		"no files":  func(m *Manifest) { m.Files = nil },
		"folder":    func(m *Manifest) { m.Files[0].Name = "../vmlinuz" },
		"dot":       func(m *Manifest) { m.Files[0].Name = ".x" },
		"twice":     func(m *Manifest) { m.Files = append(m.Files, m.Files[0]) },
		"negative":  func(m *Manifest) { m.Files[0].Size = -1 },
		"huge":      func(m *Manifest) { m.Files[0].Size = MaxFileSize + 1 },
		"hash":      func(m *Manifest) { m.Files[0].SHA256 = "xyz" },
		"signature": func(m *Manifest) { m.Files[0].Name = SignatureName },
	} {
		m := good()
		if err := m.check(); err != nil {
			t.Fatalf("good manifest: %v", err)
		}
		change(m)
		if err := m.check(); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: %v, want ErrFormat", name, err)
		}
	}
}

func TestPublicKeyText(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(nil)
	back, err := ParsePublicKey(" " + FormatPublicKey(pub) + "\n")
	if err != nil || !back.Equal(pub) {
		t.Fatalf("round trip: %v", err)
	}
	if _, err := ParsePublicKey("c2hvcnQ="); err == nil {
		t.Error("a short key was accepted")
	}
}

// FuzzRead: whatever the stream, reading ends in a bundle error or io.EOF,
// never a panic, and nothing comes out of a bundle the key did not sign.
func FuzzRead(f *testing.F) {
	b, pub, _ := testBundle(f)
	f.Add(b[:4096])
	f.Add(b[:1024])
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytes.NewReader(data), []ed25519.PublicKey{pub})
		if err != nil {
			return
		}
		if r.Manifest.Version != "v2" || r.Manifest.Build != 2 {
			t.Fatalf("a manifest the key did not sign was accepted: %+v", r.Manifest)
		}
		for {
			_, c, err := r.Next()
			if err != nil {
				return
			}
			if _, err := io.Copy(io.Discard, c); err != nil && !errors.Is(err, ErrContent) {
				t.Fatalf("content error that is not ErrContent: %v", err)
			}
		}
	})
}

func TestChannel(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(nil)
	data, err := SignIndex(&Index{Board: "qemu-arm64", Version: "v3", Build: 3, Bundle: "bundles/v3.cairnb", Size: 100}, key)
	if err != nil {
		t.Fatal(err)
	}
	base, _ := url.Parse("http://updates.lan/fleet/stable.json")
	ix, err := ParseChannel(data, []ed25519.PublicKey{pub}, base)
	if err != nil {
		t.Fatal(err)
	}
	if ix.Bundle != "http://updates.lan/fleet/bundles/v3.cairnb" || ix.Build != 3 {
		t.Errorf("index %+v", ix)
	}
	other, _, _ := ed25519.GenerateKey(nil)
	if _, err := ParseChannel(data, []ed25519.PublicKey{other}, base); !errors.Is(err, ErrSignature) {
		t.Errorf("another key: %v", err)
	}
	changed := bytes.Replace(data, []byte("\"signature\""), []byte("\"signature\" "), 1)
	changed = bytes.Replace(changed, []byte("eyJ"), []byte("eyK"), 1)
	if _, err := ParseChannel(changed, []ed25519.PublicKey{pub}, base); err == nil {
		t.Error("a changed index was accepted")
	}
	secure, _ := url.Parse("https://updates.lan/stable.json")
	down, _ := SignIndex(&Index{Bundle: "http://elsewhere/v3.cairnb", Size: 100}, key)
	if _, err := ParseChannel(down, []ed25519.PublicKey{pub}, secure); !errors.Is(err, ErrFormat) {
		t.Errorf("an https channel pointing at http: %v", err)
	}
}
