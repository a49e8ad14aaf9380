package inspect

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/u-root/u-root/pkg/cpio"
)

// initramfs makes a gzip-compressed newc archive of the given files, as
// the builder does.
func initramfs(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	w := cpio.Newc.Writer(gz)
	recs := []cpio.Record{cpio.Directory("usr", 0o755)}
	for _, name := range []string{"init", "usr/lib/cairn/build.json", "usr/lib/cairn/other"} {
		if data, ok := files[name]; ok {
			recs = append(recs, cpio.StaticFile(name, data, 0o644))
		}
	}
	if err := cpio.WriteRecordsAndDirs(w, recs); err != nil {
		t.Fatal(err)
	}
	if err := cpio.WriteTrailer(w); err != nil {
		t.Fatal(err)
	}
	gz.Close()
	return buf.Bytes()
}

func TestReadInfo(t *testing.T) {
	info := `{"board":"rpi3","family":"rpi-uboot"}`
	got, err := readInfo(bytes.NewReader(initramfs(t, map[string]string{"init": strings.Repeat("x", 1001), "usr/lib/cairn/build.json": info})))
	if err != nil || string(got) != info {
		t.Fatalf("got %q, %v; want %q", got, err, info)
	}

	_, err = readInfo(bytes.NewReader(initramfs(t, map[string]string{"init": "x", "usr/lib/cairn/other": "y"})))
	if !errors.Is(err, ErrNotCairn) {
		t.Errorf("an initramfs without build.json: %v, want ErrNotCairn", err)
	}

	big := initramfs(t, map[string]string{"usr/lib/cairn/build.json": strings.Repeat(" ", maxInfo+1)})
	if _, err := readInfo(bytes.NewReader(big)); err == nil || !strings.Contains(err.Error(), "more than the") {
		t.Errorf("an oversized build.json: %v", err)
	}

	whole := initramfs(t, map[string]string{"init": strings.Repeat("x", 5000), "usr/lib/cairn/build.json": info})
	if _, err := readInfo(bytes.NewReader(whole[:len(whole)/2])); err == nil {
		t.Error("a truncated initramfs was read")
	}
	if _, err := readInfo(strings.NewReader("070701 not compressed")); err == nil || !strings.Contains(err.Error(), "not gzip-compressed") {
		t.Errorf("an uncompressed initramfs: %v", err)
	}
}

func TestBuildInfoOfOtherFiles(t *testing.T) {
	dir := t.TempDir()
	blank := filepath.Join(dir, "blank.img")
	if err := os.WriteFile(blank, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{blank, "inspect.go"} {
		if _, err := BuildInfo(p); !errors.Is(err, ErrNotCairn) {
			t.Errorf("%s: %v, want ErrNotCairn", p, err)
		}
	}
	if _, err := BuildInfo(filepath.Join(dir, "missing.img")); err == nil || errors.Is(err, ErrNotCairn) {
		t.Errorf("a missing file: %v", err)
	}
}

func TestPartitions(t *testing.T) {
	img := make([]byte, 4<<20)
	img[510], img[511] = 0x55, 0xAA
	entry := func(i int, typ byte, first, sectors uint32) {
		e := img[446+16*i:]
		e[4] = typ
		binary.LittleEndian.PutUint32(e[8:], first)
		binary.LittleEndian.PutUint32(e[12:], sectors)
	}
	entry(0, 0x0c, 2048, 100)
	entry(1, 0x0c, 4096, 200)
	parts, err := partitions(bytes.NewReader(img), int64(len(img)))
	if err != nil || len(parts) != 4 || parts[0] != (part{2048 * 512, 100 * 512}) || parts[1] != (part{4096 * 512, 200 * 512}) {
		t.Errorf("MBR: %v, %v", parts, err)
	}
	entry(1, 0x0c, 4096, 1<<30)
	if _, err := partitions(bytes.NewReader(img), int64(len(img))); err == nil || !strings.Contains(err.Error(), "partition 2 lies outside the image") {
		t.Errorf("a partition beyond the end: %v", err)
	}
	entry(0, 0xee, 1, 2047)
	if _, err := partitions(bytes.NewReader(img), int64(len(img))); err == nil || !strings.Contains(err.Error(), "without a GPT") {
		t.Errorf("a protective MBR alone: %v", err)
	}
	copy(img[512:], "EFI PART")
	binary.LittleEndian.PutUint64(img[512+72:], 2)
	binary.LittleEndian.PutUint32(img[512+80:], 1<<31) // entries: only 4 are read
	binary.LittleEndian.PutUint32(img[512+84:], 128)
	binary.LittleEndian.PutUint64(img[1024+32:], 34)
	binary.LittleEndian.PutUint64(img[1024+40:], 1000)
	parts, err = partitions(bytes.NewReader(img), int64(len(img)))
	if err != nil || len(parts) != 1 || parts[0] != (part{34 * 512, 967 * 512}) {
		t.Errorf("GPT: %v, %v", parts, err)
	}
	binary.LittleEndian.PutUint32(img[512+84:], 1<<20)
	if _, err := partitions(bytes.NewReader(img), int64(len(img))); err == nil || !strings.Contains(err.Error(), "bad entries") {
		t.Errorf("a GPT with huge entries: %v", err)
	}
}
