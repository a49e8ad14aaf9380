package oci

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func testImage() Image {
	return Image{
		Ref: "cairn.local/hello:1", Arch: "arm64", Entrypoint: []string{"/bin/hello"},
		Files:   []File{{Path: "/bin/hello", Mode: 0o755, Data: []byte("#!/bin/true\n")}},
		Created: time.Unix(1700000000, 0),
	}
}

// TestWriteIsReproducibleAndReadable writes an image twice (same bytes),
// lists it with GNU tar, and reads it back with Inspect.
func TestWriteIsReproducibleAndReadable(t *testing.T) {
	var a, b bytes.Buffer
	if err := Write(&a, testImage()); err != nil {
		t.Fatal(err)
	}
	Write(&b, testImage())
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("two writes of one image differ")
	}
	file := filepath.Join(t.TempDir(), "hello.tar")
	os.WriteFile(file, a.Bytes(), 0o644)
	out, err := exec.Command("tar", "-tf", file).CombinedOutput()
	if err != nil {
		t.Fatalf("tar -tf: %v\n%s", err, out)
	}
	for _, want := range []string{"oci-layout", "index.json", "blobs/sha256/"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("archive lacks %s:\n%s", want, out)
		}
	}
	info, err := Inspect(file)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(info.Names, []string{"cairn.local/hello:1"}) || !slices.Equal(info.Archs, []string{"arm64"}) {
		t.Errorf("Inspect = %+v", info)
	}
}

func TestInspectRefusesOtherArchives(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "notes.txt")
	os.WriteFile(src, []byte("hello"), 0o644)
	tarball := filepath.Join(dir, "notes.tar")
	if out, err := exec.Command("tar", "-cf", tarball, "-C", dir, "notes.txt").CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	for _, f := range []string{src, tarball} {
		_, err := Inspect(f)
		if !errors.Is(err, ErrNotImage) {
			t.Errorf("Inspect(%s) = %v, want ErrNotImage", filepath.Base(f), err)
		}
	}
}

// archiveOf writes a tar of name, contents pairs and returns its path.
func archiveOf(t testing.TB, pairs ...string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := 0; i+1 < len(pairs); i += 2 {
		tw.WriteHeader(&tar.Header{Name: pairs[i], Mode: 0o644, Size: int64(len(pairs[i+1])), Typeflag: tar.TypeReg})
		tw.Write([]byte(pairs[i+1]))
	}
	tw.Close()
	file := filepath.Join(t.TempDir(), "a.tar")
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// unplaced is an OCI layout whose index gives no platform, so Inspect
// follows the manifest to the config for the architecture.
var unplaced = []string{
	"index.json", `{"manifests":[{"digest":"sha256:m"}]}`,
	"blobs/sha256/m", `{"config":{"digest":"sha256:c"}}`,
	"blobs/sha256/c", `{"architecture":"riscv64"}`,
	"blobs/sha256/big", strings.Repeat("x", 1000),
}

func TestInspectFollowsManifestToConfig(t *testing.T) {
	info, err := Inspect(archiveOf(t, unplaced...))
	if err != nil || !slices.Equal(info.Archs, []string{"riscv64"}) {
		t.Fatalf("Inspect = %+v, %v; want riscv64 from the config", info, err)
	}
}

// TestInspectCaps checks that Inspect reads no document, and no sum of
// them, over its caps, and says which cap.
func TestInspectCaps(t *testing.T) {
	defer func(d, all int64, n int) { maxDocument, maxDocuments, maxMembers = d, all, n }(maxDocument, maxDocuments, maxMembers)
	maxDocument, maxDocuments, maxMembers = 100, 150, 10
	big := strings.Repeat(" ", 101)
	many := slices.Repeat([]string{"blobs/sha256/x", ""}, 5) // one name, five times
	for _, tc := range []struct {
		pairs []string
		cap   string
	}{
		{[]string{"index.json", `{"manifests":[]}` + big}, "over 100 B"},
		{[]string{"manifest.json", "[]" + big}, "over 100 B"},
		{append(slices.Clone(unplaced[:4]), "blobs/sha256/c", `{"architecture":"riscv64"}`+strings.Repeat(" ", 80)), "more than 150 B"},
		{append(many, "index.json", "{}", "a", "", "b", "", "c", "", "d", "", "e", "", "f", "", "g", "", "h", "", "i", "", "j", ""), "more than 10 members"},
	} {
		_, err := Inspect(archiveOf(t, tc.pairs...))
		if !errors.Is(err, ErrNotImage) || !strings.Contains(err.Error(), tc.cap) {
			t.Errorf("%.40q: %v, want ErrNotImage naming %q", tc.pairs[0], err, tc.cap)
		}
	}
}
