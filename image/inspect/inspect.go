// Package inspect reads what a built image says about itself: the build's
// description (boot.BuildInfo), which the builder puts into every slot's
// initramfs. cairn vm reads the board from it, and whether the image runs a
// cluster server.
package inspect

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/cairn-os/cairn/boot"
	"github.com/cairn-os/cairn/boot/family"
	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/fat32"
	"github.com/diskfs/go-diskfs/partition"
)

// Bounds on what is read from an image, which may come from anywhere.
const (
	maxInitrd = 256 << 20 // the compressed initramfs
	maxCPIO   = 1 << 30   // the initramfs, uncompressed
	maxInfo   = 1 << 20   // build.json
)

// ErrNotCairn says an image holds no build description where a Cairn
// image keeps it.
var ErrNotCairn = errors.New("not a Cairn image")

// BuildInfo reads the BuildInfo of slot A of the image at p: from
// a/initrd.img on the boot partition (UEFI), or initrd.img on the slot's
// own partition (Raspberry Pi). It only reads.
func BuildInfo(p string) (boot.BuildInfo, error) {
	var info boot.BuildInfo
	f, err := os.Open(p)
	if err != nil {
		return info, err
	}
	defer f.Close()
	store := file.New(f, true)
	table, err := partition.Read(store, 512, 512)
	if err != nil {
		return info, fmt.Errorf("%s: %w: no partition table (%v)", p, ErrNotCairn, err)
	}
	parts := table.GetPartitions()
	places := []struct {
		part int
		file string
	}{
		{boot.PartBoot, path.Join("/", boot.SlotA, family.Initrd)},
		{boot.PartSlotA, path.Join("/", family.Initrd)},
	}
	for _, pl := range places {
		if pl.part > len(parts) {
			continue
		}
		pt := parts[pl.part-1]
		fs, err := fat32.Read(store, pt.GetSize(), pt.GetStart(), 512)
		if err != nil {
			continue
		}
		initrd, err := fs.OpenFile(pl.file, os.O_RDONLY)
		if err != nil {
			continue
		}
		raw, err := readInfo(io.LimitReader(initrd, maxInitrd))
		initrd.Close()
		if err != nil {
			return info, fmt.Errorf("%s: partition %d, %s: %w", p, pl.part, pl.file, err)
		}
		if err := json.Unmarshal(raw, &info); err != nil {
			return info, fmt.Errorf("%s: %s: %w", p, boot.InfoPath, err)
		}
		return info, nil
	}
	return info, fmt.Errorf("%s: %w: no %s in its boot partition or slot A", p, ErrNotCairn, family.Initrd)
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
