// Package fat writes FAT32 filesystems from an fstree.Tree (boot sector,
// FSInfo, two FATs, folders with long names, and file data laid out
// contiguously), and reads files from them with bounds (Reader). Output
// depends only on the tree and the options. It writes whole filesystems; it
// does not modify existing ones.
package fat

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"

	"github.com/cairn-os/cairn/image/fstree"
)

// ErrTooSmall is wrapped when the content does not fit.
var ErrTooSmall = errors.New("filesystem too small")

// ErrNoFile is wrapped when a path names no file of the file system; it
// is also fs.ErrNotExist.
var ErrNoFile error = noFile{}

type noFile struct{}

func (noFile) Error() string        { return "no such file" }
func (noFile) Is(target error) bool { return target == fs.ErrNotExist }

// Options describe the filesystem.
type Options struct {
	Size       int64  // bytes; a multiple of 512
	Label      string // up to 11 characters
	VolumeID   uint32 // derive it from the build's inputs for reproducibility
	HiddenSecs uint32 // start sector of the partition on its disk
	ModTime    time.Time
}

const (
	sector   = 512
	reserved = 32
	eoc      = 0x0FFFFFFF
)

type node struct {
	e        *fstree.Entry
	cluster  uint32
	clusters uint32
	entries  [][]byte // for folders: 32-byte records, filled in later
	kids     []*node
}

// Write lays the tree out as FAT32 into out (offset 0 is the partition's
// first byte).
func Write(out io.WriterAt, t *fstree.Tree, o Options) error {
	total := uint32(o.Size / sector)
	spc := uint32(1)
	switch {
	case o.Size > 32<<30:
		spc = 64
	case o.Size > 16<<30:
		spc = 32
	case o.Size > 8<<30:
		spc = 16
	case o.Size > 260<<20:
		spc = 8
	}
	fatSecs := ((total-reserved)/spc+2)*4/sector + 1
	dataStart := reserved + 2*fatSecs
	clusters := (total - dataStart) / spc
	if clusters < 65525 {
		return fmt.Errorf("%w: %d MiB is below FAT32's minimum of 33 MiB", ErrTooSmall, o.Size>>20)
	}
	csize := int64(spc) * sector

	// Lay out: folders first, breadth by path order, then file data.
	children := t.ChildMap()
	root := &node{e: mustGet(t, "")}
	var dirs, files []*node
	var build func(n *node)
	build = func(n *node) {
		dirs = append(dirs, n)
		for _, c := range children[n.e.Path] {
			k := &node{e: c}
			n.kids = append(n.kids, k)
			switch {
			case c.Mode.IsDir():
				build(k)
			case c.Mode.IsRegular():
				files = append(files, k)
			default:
				// FAT has no symlinks or devices; boot partitions need none.
			}
		}
	}
	build(root)
	next := uint32(2)
	for _, d := range dirs {
		n := 0
		if d != root {
			n = 2
		} else if o.Label != "" {
			n = 1
		}
		for _, k := range d.kids {
			n += 1 + lfnCount(k.e.Name())
		}
		d.clusters = max(1, uint32((int64(n)*32+csize-1)/csize))
		d.cluster, next = next, next+d.clusters
	}
	for _, f := range files {
		f.clusters = uint32((f.e.Size + csize - 1) / csize)
		if f.clusters > 0 {
			f.cluster, next = next, next+f.clusters
		}
	}
	used := next - 2
	if used > clusters {
		return fmt.Errorf("%w: the content needs %d MiB, the partition has %d MiB", ErrTooSmall, int64(used)*csize>>20, int64(clusters)*csize>>20)
	}

	fat := make([]byte, fatSecs*sector)
	binary.LittleEndian.PutUint32(fat[0:], 0x0FFFFFF8)
	binary.LittleEndian.PutUint32(fat[4:], eoc)
	for _, n := range append(dirs, files...) {
		for i := range n.clusters {
			v := uint32(eoc)
			if i+1 < n.clusters {
				v = n.cluster + i + 1
			}
			binary.LittleEndian.PutUint32(fat[(n.cluster+i)*4:], v)
		}
	}
	date, tm := dosTime(o.ModTime)
	for _, d := range dirs {
		var recs [][]byte
		if d == root {
			if o.Label != "" {
				recs = append(recs, shortEntry(pad11(strings.ToUpper(o.Label)), 0x08, 0, 0, date, tm))
			}
		} else {
			parent := uint32(0)
			if p := parentOf(dirs, d); p != root {
				parent = p.cluster
			}
			recs = append(recs, shortEntry(pad11("."), 0x10, d.cluster, 0, date, tm))
			recs = append(recs, shortEntry(pad11(".."), 0x10, parent, 0, date, tm))
		}
		taken := map[string]bool{}
		for _, k := range d.kids {
			if !k.e.Mode.IsDir() && !k.e.Mode.IsRegular() {
				continue
			}
			attr, size := byte(0x20), uint32(k.e.Size)
			if k.e.Mode.IsDir() {
				attr, size = 0x10, 0
			}
			short, lfn := names(k.e.Name(), taken)
			if lfn {
				recs = append(recs, lfnEntries(k.e.Name(), checksum(short))...)
			}
			recs = append(recs, shortEntry(short, attr, k.cluster, size, date, tm))
		}
		buf := make([]byte, int64(d.clusters)*csize)
		for i, r := range recs {
			copy(buf[i*32:], r)
		}
		if _, err := out.WriteAt(buf, int64(dataStart)*sector+int64(d.cluster-2)*csize); err != nil {
			return err
		}
	}
	for _, f := range files {
		if f.clusters == 0 {
			continue
		}
		r, err := f.e.Open()
		if err != nil {
			return err
		}
		w := io.NewOffsetWriter(out, int64(dataStart)*sector+int64(f.cluster-2)*csize)
		n, err := io.Copy(w, r)
		r.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", f.e.Path, err)
		}
		if n != f.e.Size {
			return fmt.Errorf("%s changed while the image was written", f.e.Path)
		}
		if tail := int64(f.clusters)*csize - n; tail > 0 {
			if _, err := w.Write(make([]byte, tail)); err != nil {
				return err
			}
		}
	}
	for i := range int64(2) {
		if _, err := out.WriteAt(fat, int64(reserved+uint32(i)*fatSecs)*sector); err != nil {
			return err
		}
	}
	boot := bootSector(o, total, spc, fatSecs)
	info := fsInfo(clusters-used, next)
	for _, at := range []int64{0, 6} {
		if _, err := out.WriteAt(boot, at*sector); err != nil {
			return err
		}
		if _, err := out.WriteAt(info, (at+1)*sector); err != nil {
			return err
		}
	}
	return nil
}

func mustGet(t *fstree.Tree, p string) *fstree.Entry {
	e, _ := t.Get(p)
	return e
}

func parentOf(dirs []*node, d *node) *node {
	for _, p := range dirs {
		for _, k := range p.kids {
			if k == d {
				return p
			}
		}
	}
	return nil
}

func bootSector(o Options, total, spc, fatSecs uint32) []byte {
	b := make([]byte, sector)
	copy(b, []byte{0xEB, 0x58, 0x90})
	copy(b[3:], "CAIRN   ")
	binary.LittleEndian.PutUint16(b[11:], sector)
	b[13] = byte(spc)
	binary.LittleEndian.PutUint16(b[14:], reserved)
	b[16] = 2
	b[21] = 0xF8
	binary.LittleEndian.PutUint16(b[24:], 63)
	binary.LittleEndian.PutUint16(b[26:], 255)
	binary.LittleEndian.PutUint32(b[28:], o.HiddenSecs)
	binary.LittleEndian.PutUint32(b[32:], total)
	binary.LittleEndian.PutUint32(b[36:], fatSecs)
	binary.LittleEndian.PutUint32(b[44:], 2)
	binary.LittleEndian.PutUint16(b[48:], 1)
	binary.LittleEndian.PutUint16(b[50:], 6)
	b[64] = 0x80
	b[66] = 0x29
	binary.LittleEndian.PutUint32(b[67:], o.VolumeID)
	label := o.Label
	if label == "" {
		label = "NO NAME"
	}
	l := pad11(strings.ToUpper(label))
	copy(b[71:], l[:])
	copy(b[82:], "FAT32   ")
	b[510], b[511] = 0x55, 0xAA
	return b
}

func fsInfo(free, next uint32) []byte {
	b := make([]byte, sector)
	binary.LittleEndian.PutUint32(b[0:], 0x41615252)
	binary.LittleEndian.PutUint32(b[484:], 0x61417272)
	binary.LittleEndian.PutUint32(b[488:], free)
	binary.LittleEndian.PutUint32(b[492:], next)
	binary.LittleEndian.PutUint32(b[508:], 0xAA550000)
	return b
}

func dosTime(t time.Time) (date, tm uint16) {
	t = t.UTC()
	if t.Year() < 1980 {
		t = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	date = uint16((t.Year()-1980)<<9 | int(t.Month())<<5 | t.Day())
	tm = uint16(t.Hour()<<11 | t.Minute()<<5 | t.Second()/2)
	return
}

func shortEntry(name [11]byte, attr byte, cluster, size uint32, date, tm uint16) []byte {
	b := make([]byte, 32)
	copy(b, name[:])
	b[11] = attr
	binary.LittleEndian.PutUint16(b[14:], tm)
	binary.LittleEndian.PutUint16(b[16:], date)
	binary.LittleEndian.PutUint16(b[18:], date)
	binary.LittleEndian.PutUint16(b[20:], uint16(cluster>>16))
	binary.LittleEndian.PutUint16(b[22:], tm)
	binary.LittleEndian.PutUint16(b[24:], date)
	binary.LittleEndian.PutUint16(b[26:], uint16(cluster))
	binary.LittleEndian.PutUint32(b[28:], size)
	return b
}
