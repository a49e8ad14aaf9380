// Package inspect reads what a built image says about itself: the build's
// description (boot.BuildInfo), which the builder puts into every slot's
// initramfs. cairn vm reads the board from it, and whether the image runs a
// cluster server.
package inspect

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/cairn-os/cairn/boot"
	"github.com/cairn-os/cairn/boot/family"
	"github.com/cairn-os/cairn/image/fat"
)

// Bounds on what is read from an image, which may come from anywhere.
const (
	maxInitrd = 128 << 20 // the compressed initramfs
	maxCPIO   = 1 << 30   // the initramfs, uncompressed
	maxInfo   = 1 << 20   // build.json
)

// ErrNotCairn says an image holds no build description where a Cairn
// image keeps it.
var ErrNotCairn = errors.New("not a Cairn image")

// BuildInfo reads the BuildInfo of slot A of the image at p: from
// a/initrd.img on the boot partition (UEFI), or initrd.img on the slot's
// own partition (Raspberry Pi). It only reads, and bounds what it reads.
func BuildInfo(p string) (boot.BuildInfo, error) {
	var info boot.BuildInfo
	f, err := os.Open(p)
	if err != nil {
		return info, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return info, err
	}
	return buildInfo(p, f, st.Size())
}

// buildInfo reads the BuildInfo of the image named p from r.
func buildInfo(p string, r io.ReaderAt, size int64) (boot.BuildInfo, error) {
	var info boot.BuildInfo
	parts, err := partitions(r, size)
	if err != nil {
		return info, fmt.Errorf("%s: %w: %v", p, ErrNotCairn, err)
	}
	for _, pl := range family.InitrdPlaces(boot.SlotA) {
		if pl.Part > len(parts) {
			continue
		}
		pt := parts[pl.Part-1]
		fs, err := fat.NewReader(io.NewSectionReader(r, pt.start, pt.size), pt.size)
		if err != nil {
			continue
		}
		initrd, err := fs.ReadFile(pl.Path, maxInitrd)
		if errors.Is(err, iofs.ErrNotExist) {
			continue
		}
		if err != nil {
			return info, fmt.Errorf("%s: %w: partition %d: %v", p, ErrNotCairn, pl.Part, err)
		}
		raw, err := readInfo(bytes.NewReader(initrd))
		if err != nil {
			return info, fmt.Errorf("%s: partition %d, %s: %w", p, pl.Part, pl.Path, err)
		}
		if err := json.Unmarshal(raw, &info); err != nil {
			return info, fmt.Errorf("%s: %s: %w", p, boot.InfoPath, err)
		}
		return info, nil
	}
	return info, fmt.Errorf("%s: %w: no %s in its boot partition or slot A", p, ErrNotCairn, family.Initrd)
}

// part is a partition's place in the image, in bytes.
type part struct{ start, size int64 }

// partitions reads the image's MBR, or the GPT its protective MBR points
// to: the first four partitions, each checked to lie inside the image.
func partitions(r io.ReaderAt, size int64) ([]part, error) {
	mbr := make([]byte, 512)
	if _, err := r.ReadAt(mbr, 0); err != nil {
		return nil, fmt.Errorf("no partition table (%v)", err)
	}
	if mbr[510] != 0x55 || mbr[511] != 0xAA {
		return nil, errors.New("no partition table")
	}
	le32 := binary.LittleEndian.Uint32
	le64 := binary.LittleEndian.Uint64
	var parts []part
	add := func(first, sectors uint64) error {
		start, n := int64(first)*512, int64(sectors)*512
		if first >= 1<<40 || sectors >= 1<<40 || start+n > size {
			return fmt.Errorf("partition %d lies outside the image", len(parts)+1)
		}
		parts = append(parts, part{start, n})
		return nil
	}
	if mbr[446+4] != 0xEE {
		for i := range 4 {
			e := mbr[446+16*i:]
			if err := add(uint64(le32(e[8:])), uint64(le32(e[12:]))); err != nil {
				return nil, err
			}
		}
		return parts, nil
	}
	hdr := make([]byte, 92)
	if _, err := r.ReadAt(hdr, 512); err != nil || string(hdr[:8]) != "EFI PART" {
		return nil, errors.New("a protective MBR without a GPT")
	}
	at, count, esize := le64(hdr[72:]), le32(hdr[80:]), le32(hdr[84:])
	if esize < 128 || esize > 1024 || at >= 1<<40 {
		return nil, errors.New("a GPT with bad entries")
	}
	e := make([]byte, 128)
	for i := range min(count, 4) {
		if _, err := r.ReadAt(e, int64(at)*512+int64(i)*int64(esize)); err != nil {
			return nil, err
		}
		first, last := le64(e[32:]), le64(e[40:])
		if first == 0 && last == 0 {
			break
		}
		if last < first {
			return nil, fmt.Errorf("partition %d ends before it starts", i+1)
		}
		if err := add(first, last-first+1); err != nil {
			return nil, err
		}
	}
	return parts, nil
}

// readInfo finds build.json in a gzip-compressed newc cpio archive, read
// as a stream.
func readInfo(r io.Reader) ([]byte, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("the initramfs is not gzip-compressed: %w", err)
	}
	cr := bufio.NewReader(io.LimitReader(gz, maxCPIO))
	want := strings.TrimPrefix(boot.InfoPath, "/")
	var hdr [110]byte
	for {
		if _, err := io.ReadFull(cr, hdr[:]); err != nil {
			return nil, fmt.Errorf("the initramfs ends before its trailer: %w", err)
		}
		if string(hdr[:6]) != "070701" {
			return nil, fmt.Errorf("the initramfs is not a newc cpio archive")
		}
		size, err1 := strconv.ParseUint(string(hdr[54:62]), 16, 32)
		nameSize, err2 := strconv.ParseUint(string(hdr[94:102]), 16, 32)
		if err1 != nil || err2 != nil || nameSize == 0 || nameSize > 4096 {
			return nil, fmt.Errorf("the initramfs has a bad cpio header")
		}
		name := make([]byte, pad4(110+nameSize)-110)
		if _, err := io.ReadFull(cr, name); err != nil {
			return nil, fmt.Errorf("the initramfs: %w", err)
		}
		switch string(name[:nameSize-1]) {
		case "TRAILER!!!":
			return nil, fmt.Errorf("%w: the initramfs has no %s", ErrNotCairn, boot.InfoPath)
		case want:
			if size > maxInfo {
				return nil, fmt.Errorf("%s is %d bytes, more than the %d it may be", boot.InfoPath, size, maxInfo)
			}
			data := make([]byte, size)
			if _, err := io.ReadFull(cr, data); err != nil {
				return nil, fmt.Errorf("the initramfs: %w", err)
			}
			return data, nil
		}
		if _, err := cr.Discard(int(pad4(size))); err != nil {
			return nil, fmt.Errorf("the initramfs: %w", err)
		}
	}
}

func pad4(n uint64) uint64 { return (n + 3) &^ 3 }
