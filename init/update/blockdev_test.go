package update

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"testing/iotest"
)

// TestBlockDevWrites: writes of every shape (aligned and large, whole
// blocks and a tail, unaligned in memory or on the device, small) land as
// written, whichever way each went, and a read sees them.
func TestBlockDevWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "disk")
	const size = 16 << 20
	if err := os.WriteFile(path, make([]byte, size), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := openBlockDev(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	direct := b.direct != nil
	if !direct {
		t.Logf("%s does not take O_DIRECT: only the page cache's path is tested", filepath.Dir(path))
	}
	want := make([]byte, size)
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 4<<20+4096)
	for i, w := range []struct{ mem, off, n int }{
		{0, 0, 4 << 20},                   // the slot's pieces
		{0, 4 << 20, 1<<20 + 300},         // a file's last piece, with a tail
		{0, 6<<20 + 512, 256 << 10},       // aligned to sectors only
		{1, 7 << 20, 512 << 10},           // unaligned in memory
		{0, 8<<20 + 100, 512 << 10},       // unaligned on the device
		{0, 9 << 20, 512},                 // a FAT sector
		{0, 9<<20 + 32, 32},               // a folder record
		{0, 8 << 20, 2 << 20},             // over the pages the last ones left
		{512, 12<<20 + 4096, 3<<20 + 511}, // memory aligned to a sector only
	} {
		p := buf[w.mem : w.mem+w.n]
		for j := range p {
			p[j] = byte(rng.Uint32())
		}
		if n, err := b.WriteAt(p, int64(w.off)); err != nil || n != w.n {
			t.Fatalf("write %d: %d bytes, %v", i, n, err)
		}
		copy(want[w.off:], p)
	}
	if direct && b.direct == nil {
		t.Error("a direct write was refused (EINVAL): the alignment checks let through one the kernel does not take")
	}
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, size)
	if _, err := b.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	if i := firstDiff(got, want); i >= 0 {
		t.Fatalf("through the open device, byte %d differs", i)
	}
	if got, err = os.ReadFile(path); err != nil {
		t.Fatal(err)
	}
	if i := firstDiff(got, want); i >= 0 {
		t.Fatalf("read afresh, byte %d differs", i)
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}

// TestReadAhead: the bytes as they came, by Read and by WriteTo; an error
// after the bytes before it; and after Close nothing more is read.
func TestReadAhead(t *testing.T) {
	data := make([]byte, 3*aheadPiece+12345)
	for i := range data {
		data[i] = byte(i * 7)
	}
	var ws writeStats
	ra := newReadAhead(iotest.HalfReader(bytes.NewReader(data)), int64(len(data)), &ws)
	got, err := io.ReadAll(iotest.OneByteReader(io.LimitReader(ra, 5)))
	if err != nil || !bytes.Equal(got, data[:5]) {
		t.Fatalf("the first bytes: %v", err)
	}
	var rest bytes.Buffer
	if _, err := io.Copy(&rest, ra); err != nil || !bytes.Equal(rest.Bytes(), data[5:]) {
		t.Fatalf("the rest: %v, %d bytes", err, rest.Len())
	}
	ra.Close()
	if ws.bytes != int64(len(data)) {
		t.Errorf("counted %d bytes, want %d", ws.bytes, len(data))
	}

	bad := errors.New("hash mismatch")
	ra = newReadAhead(io.MultiReader(bytes.NewReader(data[:aheadPiece+10]), iotest.ErrReader(bad)), int64(len(data)), &ws)
	got, err = io.ReadAll(ra)
	if !errors.Is(err, bad) || !bytes.Equal(got, data[:aheadPiece+10]) {
		t.Errorf("a failing file: %d bytes, %v; want %d, then %v", len(got), err, aheadPiece+10, bad)
	}
	ra.Close()

	// A small file's buffers are small.
	ra = newReadAhead(bytes.NewReader(data[:100]), 100, &ws)
	if got, err := io.ReadAll(iotest.OneByteReader(ra)); err != nil || !bytes.Equal(got, data[:100]) {
		t.Errorf("a small file: %v", err)
	}
	for range 2 {
		if b := <-ra.free; cap(b) != 4096 {
			t.Errorf("a 100-byte file is read ahead into %d-byte buffers, want 4096", cap(b))
		}
	}
	ra.Close()

	var reads int
	src := readerFunc(func(p []byte) (int, error) { reads++; return len(p), nil })
	ra = newReadAhead(src, 1<<30, &ws)
	if _, err := ra.Read(make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	ra.Close()
	after := reads
	if after > 3 {
		t.Errorf("%d reads before Close, want at most 3 (two pieces and one begun)", after)
	}
	ra.Close()
	if reads != after {
		t.Errorf("read %d times after Close", reads-after)
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }
