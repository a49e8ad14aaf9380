package squashfs

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"math"
	"runtime"
	"sort"
	"time"

	"github.com/cairn-os/cairn/image/fstree"
)

// Options control the image.
type Options struct {
	Compression string    // zstd (default), gzip or xz
	BlockSize   int       // power of two from 4 KiB to 1 MiB; default 128 KiB
	ModTime     time.Time // every inode's and the superblock's time
	Workers     int       // parallel compressors; default GOMAXPROCS
	Progress    func(n int64)
}

const (
	magic        = 0x73717368
	superSize    = 96
	invalid      = math.MaxUint64
	noFragment   = 0xFFFFFFFF
	uncompressed = 1 << 24

	flagNoXattrs = 0x200
)

// Basic inode types; the extended form of each is 7 more.
const (
	tDir     = 1
	tFile    = 2
	tSymlink = 3
	tBlkDev  = 4
	tChrDev  = 5
	tFifo    = 6
	tSocket  = 7
)

// fileData is where a regular file's content went.
type fileData struct {
	start     uint64
	sizes     []uint32
	frag      uint32
	fragOff   uint32
	hasBlocks bool
}

type writer struct {
	opt     Options
	c       compressor
	out     io.WriterAt
	off     uint64
	files   map[*fstree.Entry]*fileData
	frags   []uint64 // fragment table: start, and size packed in the next slot
	ids     []uint32
	idIndex map[uint32]uint16
	inodes  metaWriter
	dirs    metaWriter
	ino     map[string]uint32
	count   uint32
}

// Write writes the tree as a squashfs image to out, starting at offset 0,
// and returns the image's size in bytes (padded to 4 KiB).
func Write(out io.WriterAt, t *fstree.Tree, opt Options) (int64, error) {
	if opt.BlockSize == 0 {
		opt.BlockSize = 128 << 10
	}
	if opt.BlockSize < 4096 || opt.BlockSize > 1<<20 || opt.BlockSize&(opt.BlockSize-1) != 0 {
		return 0, fmt.Errorf("squashfs: block size %d is not a power of two from 4 KiB to 1 MiB", opt.BlockSize)
	}
	if opt.Workers <= 0 {
		opt.Workers = runtime.GOMAXPROCS(0)
	}
	c, err := newCompressor(opt.Compression, opt.BlockSize)
	if err != nil {
		return 0, err
	}
	w := &writer{opt: opt, c: c, out: out, off: superSize, files: map[*fstree.Entry]*fileData{},
		idIndex: map[uint32]uint16{}, ino: map[string]uint32{}}
	w.inodes.c, w.dirs.c = c, c

	entries := t.Walk()
	for _, e := range entries {
		w.count++
		w.ino[e.Path] = w.count
		w.id(e.UID)
		w.id(e.GID)
	}
	if len(w.ids) > math.MaxUint16 {
		return 0, fmt.Errorf("squashfs: more than 65535 distinct owners")
	}
	if err := w.data(entries); err != nil {
		return 0, err
	}
	root, err := w.directory(t.ChildMap(), entries[0], w.count+1)
	if err != nil {
		return 0, err
	}
	return w.finish(root)
}

func (w *writer) id(v uint32) uint16 {
	if i, ok := w.idIndex[v]; ok {
		return i
	}
	i := uint16(len(w.ids))
	w.ids = append(w.ids, v)
	w.idIndex[v] = i
	return i
}

func (w *writer) emit(p []byte) error {
	if _, err := w.out.WriteAt(p, int64(w.off)); err != nil {
		return err
	}
	w.off += uint64(len(p))
	return nil
}

// job is one block to compress; its result comes back on done.
type job struct {
	data []byte
	file *fileData // nil for a fragment block
	done chan result
}

type result struct {
	data []byte
	size uint32 // size field: length, with the uncompressed bit
	err  error
}

func (w *writer) compressBlock(data []byte) result {
	var z bytes.Buffer
	if err := w.c.compress(&z, data); err != nil {
		return result{err: err}
	}
	if z.Len() < len(data) {
		return result{data: z.Bytes(), size: uint32(z.Len())}
	}
	return result{data: data, size: uint32(len(data)) | uncompressed}
}

// data writes every regular file's blocks and the fragment blocks. Reading
// and packing happen in order in one goroutine, compression in workers, and
// writing in order here, so the output does not depend on scheduling.
func (w *writer) data(entries []*fstree.Entry) error {
	jobs := make(chan *job, w.opt.Workers*4)
	queue := make(chan *job, w.opt.Workers*4)
	for range w.opt.Workers {
		go func() {
			for j := range jobs {
				j.done <- w.compressBlock(j.data)
			}
		}()
	}
	readErr := make(chan error, 1)
	go func() {
		defer close(queue)
		defer close(jobs)
		readErr <- w.read(entries, func(j *job) {
			j.done = make(chan result, 1)
			queue <- j
			jobs <- j
		})
	}()
	var firstErr error
	for j := range queue {
		r := <-j.done
		if firstErr != nil {
			continue
		}
		if r.err != nil {
			firstErr = r.err
			continue
		}
		start := w.off
		if err := w.emit(r.data); err != nil {
			firstErr = err
			continue
		}
		if j.file == nil {
			w.frags = append(w.frags, start, uint64(r.size))
		} else {
			if !j.file.hasBlocks {
				j.file.start, j.file.hasBlocks = start, true
			}
			j.file.sizes = append(j.file.sizes, r.size)
		}
		if w.opt.Progress != nil {
			w.opt.Progress(int64(len(r.data)))
		}
	}
	if err := <-readErr; err != nil {
		return err
	}
	return firstErr
}

func (w *writer) read(entries []*fstree.Entry, submit func(*job)) error {
	bs := w.opt.BlockSize
	var frag []byte
	nfrag := uint32(0)
	for _, e := range entries {
		if !e.Mode.IsRegular() {
			continue
		}
		fd := &fileData{frag: noFragment}
		w.files[e] = fd
		r, err := e.Open()
		if err != nil {
			return err
		}
		var n int64
		for {
			buf := make([]byte, bs)
			m, err := io.ReadFull(r, buf)
			n += int64(m)
			if m == bs || (m > 0 && e.Size >= int64(bs)) {
				submit(&job{data: buf[:m], file: fd})
			} else if m > 0 {
				if len(frag)+m > bs {
					submit(&job{data: frag})
					frag, nfrag = nil, nfrag+1
				}
				fd.frag, fd.fragOff = nfrag, uint32(len(frag))
				frag = append(frag, buf[:m]...)
			}
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				break
			}
			if err != nil {
				r.Close()
				return fmt.Errorf("%s: %w", e.Path, err)
			}
		}
		r.Close()
		if n != e.Size {
			return fmt.Errorf("%s changed while the image was written (%d bytes, expected %d)", e.Path, n, e.Size)
		}
	}
	if len(frag) > 0 {
		submit(&job{data: frag})
	}
	return nil
}

func perm(m fs.FileMode) uint16 {
	p := uint16(m.Perm())
	if m&fs.ModeSetuid != 0 {
		p |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		p |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		p |= 0o1000
	}
	return p
}

func basicType(m fs.FileMode) uint16 {
	switch {
	case m.IsDir():
		return tDir
	case m&fs.ModeSymlink != 0:
		return tSymlink
	case m&fs.ModeCharDevice != 0:
		return tChrDev
	case m&fs.ModeDevice != 0:
		return tBlkDev
	case m&fs.ModeNamedPipe != 0:
		return tFifo
	case m&fs.ModeSocket != 0:
		return tSocket
	}
	return tFile
}

func (w *writer) header(e *fstree.Entry, typ uint16) le {
	return le(nil).u16(typ).u16(perm(e.Mode)).u16(w.idIndex[e.UID]).u16(w.idIndex[e.GID]).
		u32(uint32(w.opt.ModTime.Unix())).u32(w.ino[e.Path])
}

// inodeRef is a reference to an inode: block start << 16 | offset.
type inodeRef struct {
	block  uint32
	offset uint16
}

func (r inodeRef) u64() uint64 { return uint64(r.block)<<16 | uint64(r.offset) }

// leaf writes a non-folder inode.
func (w *writer) leaf(e *fstree.Entry) (inodeRef, error) {
	b, o := w.inodes.pos()
	ref := inodeRef{b, o}
	var rec le
	switch t := basicType(e.Mode); t {
	case tFile:
		fd := w.files[e]
		if fd.start <= math.MaxUint32 && e.Size <= math.MaxUint32 {
			rec = w.header(e, tFile).u32(uint32(fd.start)).u32(fd.frag).u32(fd.fragOff).u32(uint32(e.Size))
		} else {
			rec = w.header(e, tFile+7).u64(fd.start).u64(uint64(e.Size)).u64(0).u32(1).u32(fd.frag).u32(fd.fragOff).u32(0xFFFFFFFF)
		}
		for _, s := range fd.sizes {
			rec = rec.u32(s)
		}
	case tSymlink:
		rec = append(w.header(e, t).u32(1).u32(uint32(len(e.Target))), e.Target...)
	case tChrDev, tBlkDev:
		dev := e.Minor&0xff | e.Major<<8 | (e.Minor&^0xff)<<12
		rec = w.header(e, t).u32(1).u32(dev)
	default:
		rec = w.header(e, t).u32(1)
	}
	return ref, w.inodes.write(rec)
}

type dirEntry struct {
	name string
	typ  uint16
	ref  inodeRef
	ino  uint32
}

// directory writes a folder's children (recursively), then its listing, then
// its own inode, and returns the reference to that inode.
func (w *writer) directory(children map[string][]*fstree.Entry, e *fstree.Entry, parent uint32) (inodeRef, error) {
	kids := children[e.Path]
	list := make([]dirEntry, 0, len(kids))
	subdirs := 0
	for _, k := range kids {
		var ref inodeRef
		var err error
		if k.Mode.IsDir() {
			subdirs++
			ref, err = w.directory(children, k, w.ino[e.Path])
		} else {
			ref, err = w.leaf(k)
		}
		if err != nil {
			return inodeRef{}, err
		}
		list = append(list, dirEntry{name: k.Name(), typ: basicType(k.Mode), ref: ref, ino: w.ino[k.Path]})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].name < list[j].name })

	dirBlock, dirOff := w.dirs.pos()
	var listing le
	for i := 0; i < len(list); {
		base := list[i]
		n := 1
		for i+n < len(list) && n < 256 {
			next := list[i+n]
			d := int64(next.ino) - int64(base.ino)
			if next.ref.block != base.ref.block || d > math.MaxInt16 || d < math.MinInt16 {
				break
			}
			n++
		}
		listing = listing.u32(uint32(n - 1)).u32(base.ref.block).u32(base.ino)
		for _, d := range list[i : i+n] {
			if len(d.name) == 0 || len(d.name) > 256 {
				return inodeRef{}, fmt.Errorf("squashfs: name %q must be 1 to 256 bytes", d.name)
			}
			listing = listing.u16(d.ref.offset).u16(uint16(int16(int64(d.ino) - int64(base.ino)))).u16(d.typ).u16(uint16(len(d.name) - 1))
			listing = append(listing, d.name...)
		}
		i += n
	}
	if err := w.dirs.write(listing); err != nil {
		return inodeRef{}, err
	}

	b, o := w.inodes.pos()
	links := uint32(2 + subdirs)
	size := uint32(len(listing) + 3)
	var rec le
	if size <= math.MaxUint16 {
		rec = w.header(e, tDir).u32(dirBlock).u32(links).u16(uint16(size)).u16(dirOff).u32(parent)
	} else {
		rec = w.header(e, tDir+7).u32(links).u32(size).u32(dirBlock).u32(parent).u16(0).u16(dirOff).u32(0xFFFFFFFF)
	}
	return inodeRef{b, o}, w.inodes.write(rec)
}

// table writes records as metadata blocks followed by the index of those
// blocks, and returns where the index starts.
func (w *writer) table(records []byte) (uint64, error) {
	m := metaWriter{c: w.c}
	var starts []uint64
	for len(records) > 0 {
		n := min(metaSize, len(records))
		b, _ := m.pos()
		starts = append(starts, w.off+uint64(b))
		if err := m.write(records[:n]); err != nil {
			return 0, err
		}
		records = records[n:]
	}
	body, err := m.finish()
	if err != nil {
		return 0, err
	}
	if err := w.emit(body); err != nil {
		return 0, err
	}
	at := w.off
	var idx le
	for _, s := range starts {
		idx = idx.u64(s)
	}
	return at, w.emit(idx)
}

func (w *writer) finish(root inodeRef) (int64, error) {
	inodes, err := w.inodes.finish()
	if err != nil {
		return 0, err
	}
	dirs, err := w.dirs.finish()
	if err != nil {
		return 0, err
	}
	inodeStart := w.off
	if err := w.emit(inodes); err != nil {
		return 0, err
	}
	dirStart := w.off
	if err := w.emit(dirs); err != nil {
		return 0, err
	}
	fragStart := uint64(invalid)
	if len(w.frags) > 0 {
		var recs le
		for i := 0; i < len(w.frags); i += 2 {
			recs = recs.u64(w.frags[i]).u32(uint32(w.frags[i+1])).u32(0)
		}
		if fragStart, err = w.table(recs); err != nil {
			return 0, err
		}
	}
	var ids le
	for _, id := range w.ids {
		ids = ids.u32(id)
	}
	idStart, err := w.table(ids)
	if err != nil {
		return 0, err
	}
	used := w.off
	if pad := (4096 - used%4096) % 4096; pad > 0 {
		if err := w.emit(make([]byte, pad)); err != nil {
			return 0, err
		}
	}
	bs := w.opt.BlockSize
	sb := le(nil).u32(magic).u32(w.count).u32(uint32(w.opt.ModTime.Unix())).u32(uint32(bs)).
		u32(uint32(len(w.frags) / 2)).u16(w.c.id()).u16(uint16(log2(bs))).u16(flagNoXattrs).
		u16(uint16(len(w.ids))).u16(4).u16(0).u64(root.u64()).u64(used).
		u64(idStart).u64(invalid).u64(inodeStart).u64(dirStart).u64(fragStart).u64(invalid)
	if len(sb) != superSize {
		panic("squashfs: superblock layout")
	}
	if _, err := w.out.WriteAt(sb, 0); err != nil {
		return 0, err
	}
	return int64(w.off), nil
}

func log2(n int) int {
	l := 0
	for n > 1 {
		n >>= 1
		l++
	}
	return l
}
