package apt

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
)

// testRepo writes a signed Debian-format repository under dir with the given
// packages (name -> Depends) and returns its source.
type testRepo struct {
	dir     string
	entity  *openpgp.Entity
	keyring string
	debs    map[string][]byte
	head    string // the release's fields before Components
}

// releaseHead is the start of a release for suite test dated d.
func releaseHead(d time.Time) string {
	return "Origin: test\nSuite: test\nDate: " + d.UTC().Format(time.RFC1123) + "\n"
}

func newTestRepo(t *testing.T, pkgs map[string]string) *testRepo {
	t.Helper()
	dir := t.TempDir()
	ent, err := openpgp.NewEntity("test archive", "", "archive@test.invalid", nil)
	if err != nil {
		t.Fatal(err)
	}
	var kr bytes.Buffer
	if err := ent.Serialize(&kr); err != nil {
		t.Fatal(err)
	}
	r := &testRepo{dir: dir, entity: ent, keyring: filepath.Join(dir, "key.gpg"), debs: map[string][]byte{}, head: releaseHead(time.Now())}
	must(t, os.WriteFile(r.keyring, kr.Bytes(), 0o644))
	var index strings.Builder
	for name, deps := range pkgs {
		content := []byte("fake deb " + name)
		r.debs[name] = content
		fn := "pool/main/" + name + "_1.0_arm64.deb"
		must(t, os.MkdirAll(filepath.Join(dir, "pool/main"), 0o755))
		must(t, os.WriteFile(filepath.Join(dir, fn), content, 0o644))
		fmt.Fprintf(&index, "Package: %s\nVersion: 1.0\nArchitecture: arm64\nDescription: test\n more text\nFilename: %s\nSize: %d\nSHA256: %s\n", name, fn, len(content), hexsum(content))
		if deps != "" {
			fmt.Fprintf(&index, "Depends: %s\n", deps)
		}
		index.WriteString("\n")
	}
	r.publish(t, []byte(index.String()))
	return r
}

func (r *testRepo) publish(t *testing.T, packages []byte) {
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write(packages)
	w.Close()
	d := filepath.Join(r.dir, "dists/test/main/binary-arm64")
	must(t, os.MkdirAll(d, 0o755))
	must(t, os.WriteFile(filepath.Join(d, "Packages.gz"), gz.Bytes(), 0o644))
	r.sign(t, fmt.Sprintf(r.head+"Components: main\nSHA256:\n %s %d main/binary-arm64/Packages\n %s %d main/binary-arm64/Packages.gz\n",
		hexsum(packages), len(packages), hexsum(gz.Bytes()), gz.Len()))
}

// sign writes release as the suite's InRelease, signed by the repository's
// key.
func (r *testRepo) sign(t *testing.T, release string) {
	var signed bytes.Buffer
	sw, err := clearsign.Encode(&signed, r.entity.PrivateKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	sw.Write([]byte(release))
	sw.Close()
	must(t, os.WriteFile(filepath.Join(r.dir, "dists/test/InRelease"), signed.Bytes(), 0o644))
}

func (r *testRepo) client(t *testing.T) *Client {
	return &Client{
		Sources: []Source{{URI: "file://" + r.dir, Suite: "test", Components: []string{"main"}, Keyring: r.keyring}},
		Arch:    "arm64",
		Cache:   t.TempDir(),
	}
}

func hexsum(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestIndexClosureFetch(t *testing.T) {
	repo := newTestRepo(t, map[string]string{
		"e2fsprogs": "libc6 (>= 2.34), logsave | foo",
		"libc6":     "libgcc-s1",
		"libgcc-s1": "",
		"logsave":   "libc6",
	})
	c := repo.client(t)
	ix, err := c.Index(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	pkgs, err := ix.Closure([]string{"e2fsprogs"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range pkgs {
		names = append(names, p.Name)
	}
	if got := strings.Join(names, ","); got != "e2fsprogs,libc6,libgcc-s1,logsave" {
		t.Errorf("closure %s", got)
	}
	path, err := c.Fetch(context.Background(), pkgs[0])
	if err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(path); string(data) != "fake deb e2fsprogs" {
		t.Errorf("fetched %q", data)
	}
	// Offline, the same works from the cache alone.
	c.Offline = true
	c.Sources[0].URI = "file:///nonexistent"
	if _, err := c.Index(context.Background()); !errors.Is(err, ErrOffline) {
		t.Errorf("offline index with another URI: %v", err)
	}
}

func TestMissingPackage(t *testing.T) {
	repo := newTestRepo(t, map[string]string{"a": "b"})
	ix, err := repo.client(t).Index(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_, err = ix.Closure([]string{"a"})
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "b (needed by a)") {
		t.Errorf("got %v", err)
	}
}

func TestBadSignature(t *testing.T) {
	repo := newTestRepo(t, map[string]string{"a": ""})
	// Another key signs: the keyring does not have it.
	other, _ := openpgp.NewEntity("mallory", "", "m@test.invalid", nil)
	repo.entity = other
	repo.publish(t, []byte("Package: a\nVersion: 2\nFilename: x\nSHA256: 00\nSize: 1\n\n"))
	_, err := repo.client(t).Index(context.Background())
	if !errors.Is(err, ErrSignature) {
		t.Fatalf("got %v", err)
	}
	// Unsigned.
	must(t, os.WriteFile(filepath.Join(repo.dir, "dists/test/InRelease"), []byte("Origin: test\nSHA256:\n"), 0o644))
	if _, err := repo.client(t).Index(context.Background()); !errors.Is(err, ErrSignature) {
		t.Fatalf("unsigned: got %v", err)
	}
}

func TestBadDebChecksum(t *testing.T) {
	repo := newTestRepo(t, map[string]string{"a": ""})
	c := repo.client(t)
	ix, err := c.Index(context.Background())
	must(t, err)
	p, _ := ix.Lookup("a")
	must(t, os.WriteFile(filepath.Join(repo.dir, p.Filename), []byte("tampered"), 0o644))
	if _, err := c.Fetch(context.Background(), p); !errors.Is(err, ErrChecksum) {
		t.Fatalf("got %v", err)
	}
	if _, err := os.Stat(filepath.Join(c.Cache, "debs", p.SHA256+".deb")); !os.IsNotExist(err) {
		t.Errorf("a bad download was cached")
	}
}

func TestHostSources(t *testing.T) {
	root := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(root, "etc/apt/sources.list.d"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "etc/apt/sources.list.d/debian.sources"), []byte(
		"Types: deb\n# a comment\nURIs: http://archive.test/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\nTypes: deb-src\nURIs: http://archive.test/debian\nSuites: bookworm\nComponents: main\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(root, "etc/apt/sources.list"), []byte("deb [arch=amd64 signed-by=/k.gpg] http://other.test/x stable main contrib\n# deb http://off.test y z\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(root, "etc/apt/sources.list.d/x.list.disabled"), []byte("deb http://no.test a b\n"), 0o644))
	srcs, err := HostSources(root)
	must(t, err)
	var got []string
	for _, s := range srcs {
		got = append(got, s.String()+" "+strings.TrimPrefix(s.Keyring, root))
	}
	want := "http://other.test/x stable [main contrib] /k.gpg|http://archive.test/debian bookworm [main] /usr/share/keyrings/debian-archive-keyring.gpg|http://archive.test/debian bookworm-updates [main] /usr/share/keyrings/debian-archive-keyring.gpg"
	if strings.Join(got, "|") != want {
		t.Errorf("got  %s\nwant %s", strings.Join(got, "|"), want)
	}
}
