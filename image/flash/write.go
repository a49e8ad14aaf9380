//go:build linux

package flash

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/cairn-os/cairn/internal/progress"
	"golang.org/x/sys/unix"
)

// Result is what Write did.
type Result struct {
	Image, Data int64 // the image's size, and the bytes of data written
	Took        time.Duration
}

// extent is a range of the image that holds data.
type extent struct{ off, end int64 }

// chunk is how much is read, written and read back at a time.
const chunk = 4 << 20

// Write writes the image at path onto d: only its data (holes stay as
// they are on the device), then syncs, drops the device's cached pages and
// reads back what it wrote, comparing hashes. Progress goes to w. The
// device is opened exclusively, so the kernel refuses it while anything
// has it mounted.
func Write(ctx context.Context, path string, d *Device, w io.Writer) (*Result, error) {
	start := time.Now()
	img, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer img.Close()
	st, err := img.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not an image file", path)
	}
	if st.Size() > d.Size {
		return nil, fmt.Errorf("%s is %s, more than the %s of %s; use a larger card", path, progress.Size(st.Size()), progress.Size(d.Size), d.Path)
	}
	exts, err := extents(img, st.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var data int64
	for _, e := range exts {
		data += e.end - e.off
	}
	dev, err := os.OpenFile(d.Path, os.O_WRONLY|unix.O_EXCL, 0)
	if err != nil {
		if errors.Is(err, unix.EBUSY) {
			return nil, fmt.Errorf("%s is %w by the system (mounted, or held by another program); unmount it first", d.Path, ErrInUse)
		}
		return nil, err
	}
	defer dev.Close()

	bar := progress.New(w, "writing "+d.Path, data)
	want := sha256.New()
	buf := make([]byte, chunk)
	var written int64
	for _, e := range exts {
		for off := e.off; off < e.end; {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("stopped after %s of %s: %s holds part of the image now; flash it again", progress.Size(written), progress.Size(data), d.Path)
			}
			n := int(min(chunk, e.end-off))
			if _, err := img.ReadAt(buf[:n], off); err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			if _, err := dev.WriteAt(buf[:n], off); err != nil {
				return nil, fmt.Errorf("writing %s at %s: %w; %s holds part of the image now (a bad card?)", d.Path, progress.Size(off), err, d.Path)
			}
			want.Write(buf[:n])
			written += int64(n)
			bar.Add(int64(n))
			off += int64(n)
		}
	}
	if err := dev.Sync(); err != nil {
		return nil, fmt.Errorf("syncing %s: %w", d.Path, err)
	}
	bar.Done()

	// Read back from the device, not from the page cache.
	back, err := os.Open(d.Path)
	if err != nil {
		return nil, err
	}
	defer back.Close()
	unix.IoctlSetInt(int(back.Fd()), unix.BLKFLSBUF, 0)
	unix.Fadvise(int(back.Fd()), 0, 0, unix.FADV_DONTNEED)
	bar = progress.New(w, "verifying "+d.Path, data)
	got := sha256.New()
	for _, e := range exts {
		for off := e.off; off < e.end; {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("stopped while verifying %s: %w", d.Path, err)
			}
			n := int(min(chunk, e.end-off))
			if _, err := back.ReadAt(buf[:n], off); err != nil {
				return nil, fmt.Errorf("reading %s back: %w", d.Path, err)
			}
			got.Write(buf[:n])
			bar.Add(int64(n))
			off += int64(n)
		}
	}
	bar.Done()
	if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		return nil, fmt.Errorf("%s reads back other bytes than were written: the card is failing or fake (its real size smaller than it says); use another", d.Path)
	}
	return &Result{Image: st.Size(), Data: data, Took: time.Since(start)}, nil
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
		hole, err := unix.Seek(int(f.Fd()), data, unix.SEEK_HOLE)
		if err != nil {
			return nil, err
		}
		hole = min(hole, size)
		exts = append(exts, extent{data, hole})
		off = hole
	}
	return exts, nil
}
