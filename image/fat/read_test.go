package fat

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"
)

func TestReaderReadsWhatWriteWrote(t *testing.T) {
	tr := sample(t)
	p := writeImage(t, tr, 64<<20)
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := NewReader(f, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range tr.Walk() {
		if !e.Mode.IsRegular() {
			continue
		}
		want := e.Data
		got, err := r.ReadFile(e.Path, 64<<20)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes, %v; want %d bytes", e.Path, len(got), err, len(want))
		}
	}
	if got, err := r.ReadFile("LOADER/Entries/CAIRN-A+3-0.CONF", 100); err != nil || string(got) != "title Cairn A\n" {
		t.Errorf("names compare without case: %q, %v", got, err)
	}
	for _, missing := range []string{"nope", "a/nope", "a", "config.txt/x", "a/broadcom"} {
		if _, err := r.ReadFile(missing, 100); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: %v, want not found", missing, err)
		}
	}
	if _, err := r.ReadFile("a/root.squashfs", 1<<20); err == nil || !strings.Contains(err.Error(), "more than the 1048576 it may be") {
		t.Errorf("a file larger than asked: %v", err)
	}
}

// corrupt writes the sample, changes it, and opens it again.
func corrupt(t *testing.T, change func(img []byte)) (*Reader, error) {
	t.Helper()
	p := writeImage(t, sample(t), 64<<20)
	img, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	change(img)
	return NewReader(bytes.NewReader(img), int64(len(img)))
}

func TestReaderRefusesBadFilesystems(t *testing.T) {
	for name, tc := range map[string]struct {
		change func([]byte)
		want   string
	}{
		"no signature":   {func(b []byte) { b[510] = 0 }, "no boot signature"},
		"sector size":    {func(b []byte) { binary.LittleEndian.PutUint16(b[11:], 513) }, "513 bytes per sector"},
		"cluster size":   {func(b []byte) { b[13] = 3 }, "3 sectors per cluster"},
		"no FAT":         {func(b []byte) { binary.LittleEndian.PutUint32(b[36:], 0) }, "no FAT"},
		"larger than it": {func(b []byte) { binary.LittleEndian.PutUint32(b[32:], 1<<30) }, "more than its"},
		"FATs fill it":   {func(b []byte) { binary.LittleEndian.PutUint32(b[36:], 1<<16) }, "its FATs fill it"},
		"root outside":   {func(b []byte) { binary.LittleEndian.PutUint32(b[44:], 1<<30) }, "its root folder is outside it"},
		"FAT16 root":     {func(b []byte) { binary.LittleEndian.PutUint16(b[17:], 512) }, "FAT12 or FAT16"},
		"FAT16 size":     {func(b []byte) { binary.LittleEndian.PutUint16(b[22:], 200) }, "FAT12 or FAT16"},
		"version":        {func(b []byte) { b[42] = 1 }, "FAT32 version 0.1"},
		"FAT in use":     {func(b []byte) { b[40] = 0x85 }, "FAT 6 is in use, of 2"},
	} {
		if _, err := corrupt(t, tc.change); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}

	// A chain that loops: the big file's first cluster points to itself.
	var first uint32
	r, err := corrupt(t, func(b []byte) {
		fr, err := NewReader(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		entries, err := fr.folder(fr.root)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.name == "a" {
				kids, _ := fr.folder(e.cluster)
				for _, k := range kids {
					if k.name == "root.squashfs" {
						first = k.cluster
					}
				}
			}
		}
		binary.LittleEndian.PutUint32(b[fr.fat+int64(first)*4:], first)
	})
	if err != nil || first == 0 {
		t.Fatalf("%v, first cluster %d", err, first)
	}
	if _, err := r.ReadFile("a/root.squashfs", 64<<20); err == nil || !strings.Contains(err.Error(), "loops") {
		t.Errorf("a looping chain: %v", err)
	}
}

// TestReaderFollowsTheFATInUse: with mirroring off, the Reader follows the
// FAT the flags name, and the editor, which writes every FAT alike,
// refuses the file system.
func TestReaderFollowsTheFATInUse(t *testing.T) {
	p := writeImage(t, sample(t), 64<<20)
	img, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	size := int64(len(img))
	fr, err := NewReader(bytes.NewReader(img), size)
	if err != nil {
		t.Fatal(err)
	}
	want, err := fr.ReadFile("a/root.squashfs", 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint16(img[40:], 0x81) // FAT 2 alone
	clear(img[fr.fat : fr.fat+fr.fatBytes])
	fr, err = NewReader(bytes.NewReader(img), size)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := fr.ReadFile("a/root.squashfs", 64<<20); err != nil || !bytes.Equal(got, want) {
		t.Errorf("through FAT 2: %d bytes, %v; want the %d written", len(got), err, len(want))
	}
	if err := os.WriteFile(p, img, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := Edit(f, size); err == nil || !strings.Contains(err.Error(), "not mirrored") {
		t.Errorf("Edit of a file system with one FAT in use: %v, want a refusal", err)
	}
	if after, _ := os.ReadFile(p); !bytes.Equal(after, img) {
		t.Error("the refused Edit changed the file system")
	}
}
