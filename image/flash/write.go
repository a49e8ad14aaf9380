//go:build linux

package flash

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
	"unsafe"

	"github.com/cairn-os/cairn/internal/progress"
	"golang.org/x/sys/unix"
)

// Result is what Write did.
type Result struct {
	Image, Data int64         // the image's size, and the bytes of data in it (the rest are holes, written as zeros)
	Wrote, Read time.Duration // writing (with the sync), and reading back
}

// extent is a range of the image that holds data.
type extent struct{ off, end int64 }

// chunk is how much is written or read back at a time; zeroing goes in
// larger steps, as the kernel picks the cheapest way the card allows.
const (
	chunk     = 4 << 20
	zeroChunk = 64 << 20
)

// Target is a device opened for writing: exclusively, so the kernel refuses
// it while anything has it mounted, and with O_DIRECT, so the progress is the
// card's and the read-back is the card's, not the page cache's.
type Target struct {
	d *Device
	f *os.File
}

// Open opens the device Describe saw. It is meant to be opened before the
// user is asked, so that the device written is the device they were shown.
func (d *Device) Open() (*Target, error) {
	f, err := os.OpenFile(d.Path, os.O_RDWR|unix.O_EXCL|unix.O_DIRECT, 0)
	switch {
	case errors.Is(err, unix.EBUSY):
		return nil, fmt.Errorf("%s is %w by the system (mounted, or held by another program); unmount it first", d.Path, ErrInUse)
	case errors.Is(err, os.ErrPermission):
		return nil, fmt.Errorf("%s may not be written by this user; run cairn flash as root (sudo) or as a member of the group disk", d.Path)
	case err != nil:
		return nil, err
	}
	var st unix.Stat_t
	size, err2 := unix.IoctlGetUint64(int(f.Fd()), unix.BLKGETSIZE64)
	if err := unix.Fstat(int(f.Fd()), &st); err != nil || err2 != nil || st.Rdev != d.rdev || int64(size) != d.Size {
		f.Close()
		return nil, fmt.Errorf("%s changed since it was looked at (another card?); run cairn flash again", d.Path)
	}
	return &Target{d: d, f: f}, nil
}

// Close closes the device.
func (t *Target) Close() error { return t.f.Close() }

// Write writes the image at path onto the target: its data, and zeros
// where it has holes (a copy of an image may have turned needed zeros,
// such as a FAT's free entries, into holes), then syncs and reads all of
// it back to compare. Progress goes to w.
func (t *Target) Write(ctx context.Context, path string, w io.Writer) (*Result, error) {
	d := t.d
	img, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer img.Close()
	st, err := img.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	switch {
	case !st.Mode().IsRegular():
		return nil, fmt.Errorf("%s is not an image file", path)
	case size > d.Size:
		return nil, fmt.Errorf("%s is %s, more than the %s of %s; use a larger card", path, progress.Size(size), progress.Size(d.Size), d.Path)
	case size%512 != 0 || size == 0:
		return nil, fmt.Errorf("%s is %d bytes, not a whole number of 512-byte sectors: not a disk image", path, size)
	}
	exts, err := extents(img, size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	buf, err := alignedBuffer(chunk)
	if err != nil {
		return nil, err
	}
	defer unix.Munmap(buf)

	start := time.Now()
	res := &Result{Image: size}
	bar := progress.New(w, "writing "+d.Path, size)
	var done int64
	stopped := func() error {
		return fmt.Errorf("stopped after %s of %s: %s holds part of the image now; flash it again", progress.Size(done), progress.Size(size), d.Path)
	}
	zero := func(off, end int64) error {
		for off < end {
			if ctx.Err() != nil {
				return stopped()
			}
			n := min(zeroChunk, end-off)
			r := [2]uint64{uint64(off), uint64(n)}
			if _, _, e := unix.Syscall(unix.SYS_IOCTL, t.f.Fd(), unix.BLKZEROOUT, uintptr(unsafe.Pointer(&r[0]))); e != 0 {
				return fmt.Errorf("zeroing %s at %s: %w; %s holds part of the image now", d.Path, progress.Size(off), e, d.Path)
			}
			off += n
			done += n
			bar.Add(n)
		}
		return nil
	}
	at := int64(0)
	for _, e := range append(exts, extent{size, size}) {
		if err := zero(at, e.off); err != nil {
			return nil, err
		}
		for off := e.off; off < e.end; {
			if ctx.Err() != nil {
				return nil, stopped()
			}
			n := min(chunk, e.end-off)
			if _, err := img.ReadAt(buf[:n], off); err != nil {
				return nil, fmt.Errorf("%s: %w (did it change while it was written?)", path, err)
			}
			if _, err := t.f.WriteAt(buf[:n], off); err != nil {
				return nil, fmt.Errorf("writing %s at %s: %w; %s holds part of the image now (a bad card?)", d.Path, progress.Size(off), err, d.Path)
			}
			off += n
			done += n
			res.Data += n
			bar.Add(n)
		}
		at = e.end
	}
	if err := t.f.Sync(); err != nil {
		return nil, fmt.Errorf("syncing %s: %w", d.Path, err)
	}
	bar.Done()
	res.Wrote = time.Since(start)

	start = time.Now()
	bar = progress.New(w, "reading back "+d.Path, size)
	want := make([]byte, chunk)
	for off := int64(0); off < size; {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("stopped while reading %s back; it was written, but not checked", d.Path)
		}
		n := min(chunk, size-off)
		if _, err := t.f.ReadAt(buf[:n], off); err != nil {
			return nil, fmt.Errorf("reading %s back at %s: %w", d.Path, progress.Size(off), err)
		}
		if _, err := img.ReadAt(want[:n], off); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if !bytes.Equal(buf[:n], want[:n]) {
			return nil, fmt.Errorf("%s reads back other bytes than were written, from %s on: the card is failing, or fake (smaller than it says); use another", d.Path, progress.Size(off+firstDiff(buf[:n], want[:n])))
		}
		off += n
		bar.Add(n)
	}
	bar.Done()
	res.Read = time.Since(start)
	return res, nil
}

func firstDiff(a, b []byte) int64 {
	for i := range a {
		if a[i] != b[i] {
			return int64(i)
		}
	}
	return 0
}

// alignedBuffer is memory that O_DIRECT accepts: page-aligned.
func alignedBuffer(n int) ([]byte, error) {
	return unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
}

// extents lists the ranges of f that hold data, from the filesystem's
// holes (SEEK_DATA, SEEK_HOLE); a filesystem without them gives one range.
func extents(f *os.File, size int64) ([]extent, error) {
	var exts []extent
	for off := int64(0); off < size; {
		data, err := unix.Seek(int(f.Fd()), off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break
		}
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) {
			return []extent{{0, size}}, nil
		}
		if err != nil {
			return nil, err
		}
		if data >= size {
			break
		}
		hole, err := unix.Seek(int(f.Fd()), data, unix.SEEK_HOLE)
		if err != nil {
			return nil, err
		}
		if hole <= data || data < off {
			return nil, errors.New("its holes moved while it was read (is it being written?)")
		}
		hole = min(hole, size)
		exts = append(exts, extent{data, hole})
		off = hole
	}
	return exts, nil
}
