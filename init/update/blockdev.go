package update

import (
	"errors"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// blockDev is a device the install writes, open twice: through the page
// cache, for reads, syncs and small or unaligned writes, and with
// O_DIRECT, for the large aligned writes of a slot's bytes. Those then go
// from the bundle's buffer to the device in one step: no copy into the
// page cache, no dirty pages that wait for the sync (a board with 1 GiB of
// memory keeps its cache), and nothing left to write back at the sync but
// the small writes. The sync still flushes the device's own cache, so
// what it promises holds for both.
type blockDev struct {
	*os.File
	direct *os.File // nil where the device does not take O_DIRECT
	align  int      // the device's logical block size
}

// directMin is the smallest write that goes around the page cache: a FAT's
// sectors and a folder's records are written a few at a time, and read
// back soon.
const directMin = 64 << 10

// openBlockDev opens path read-write; flag may add O_EXCL, which claims
// the device (no mount of it while it is open).
func openBlockDev(path string, flag int) (*blockDev, error) {
	f, err := os.OpenFile(path, os.O_RDWR|flag, 0)
	if err != nil {
		return nil, err
	}
	b := &blockDev{File: f, align: 512}
	if n, err := unix.IoctlGetInt(int(f.Fd()), unix.BLKSSZGET); err == nil && n >= 512 && n&(n-1) == 0 {
		b.align = n
	}
	// Without O_EXCL: the first open holds the claim, and a second claim
	// would be refused.
	if d, err := os.OpenFile(path, os.O_RDWR|unix.O_DIRECT, 0); err == nil {
		b.direct = d
	}
	return b, nil
}

// WriteAt writes p at off: its whole logical blocks with O_DIRECT when p
// is large and aligned in memory and on the device, the rest (a file's
// last partial block) through the page cache after them. Linux writes
// back and drops cached pages a direct write covers, so reads and later
// writes see either kind.
func (b *blockDev) WriteAt(p []byte, off int64) (int, error) {
	n := 0
	k := len(p) &^ (b.align - 1)
	if b.direct != nil && k >= directMin && off%int64(b.align) == 0 &&
		uintptr(unsafe.Pointer(unsafe.SliceData(p)))%uintptr(b.align) == 0 {
		m, err := b.direct.WriteAt(p[:k], off)
		switch {
		case errors.Is(err, unix.EINVAL) && m == 0:
			// A device or driver that wants more alignment than it says:
			// through the page cache from here on.
			b.direct.Close()
			b.direct = nil
		case err != nil:
			return m, err
		default:
			n = m
		}
	}
	m, err := b.File.WriteAt(p[n:], off+int64(n))
	return n + m, err
}

// Close closes both opens.
func (b *blockDev) Close() error {
	var err error
	if b.direct != nil {
		err = b.direct.Close()
	}
	return errors.Join(b.File.Close(), err)
}
