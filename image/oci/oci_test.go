package oci

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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
