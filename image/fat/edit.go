package fat

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// Device is the partition of an unmounted FAT32 file system, from its
// first byte, opened for writing; Sync makes what was written durable.
type Device interface {
	io.ReaderAt
	io.WriterAt
	Sync() error
}

// maxTable is the largest FAT an Editor holds in memory: 4 Mi clusters.
const maxTable = 16 << 20

// An Editor replaces files of an unmounted FAT32 file system on its raw
// partition, writing their bytes in large writes where Linux's vfat
// driver maps and allocates them a sector at a time (docs/adr/0015).
// Its order of writes survives a power cut at any instant: the new bytes
// go into free clusters, then their chain into the FATs, then the file's
// folder record, a single sector, is switched to them, and only then are
// the old clusters freed. A cut leaves the old file or the new one, and
// at worst clusters that nothing references, which the next Editor of the
// file system frees.
type Editor struct {
	dev    Device
	fr     *Reader
	table  []uint32 // the first FAT
	free   uint32   // its free clusters
	next   uint32   // where the search for free clusters starts
	dirty  map[int64]bool
	staged []staged
}

// Edit reads the FAT32 file system of size bytes on dev and frees the
// clusters no file or folder references (what a cut short edit leaves).
func Edit(dev Device, size int64) (*Editor, error) {
	fr, err := NewReader(dev, size)
	if err != nil {
		return nil, err
	}
	if !fr.mirrored {
		return nil, errors.New("its FATs are not mirrored (one of them alone is in use), which the editor does not edit; check it with fsck.vfat, or make it again with mkfs.vfat -F 32")
	}
	n := (int64(fr.clusters) + 2) * 4
	if n > maxTable {
		return nil, fmt.Errorf("its FAT is %d MiB, more than the %d MiB an edit holds", n>>20, maxTable>>20)
	}
	raw := make([]byte, n)
	if _, err := dev.ReadAt(raw, fr.fat); err != nil {
		return nil, fmt.Errorf("read the FAT: %w", err)
	}
	e := &Editor{dev: dev, fr: fr, table: make([]uint32, fr.clusters+2), next: 2, dirty: map[int64]bool{}}
	for i := range e.table {
		e.table[i] = binary.LittleEndian.Uint32(raw[i*4:])
	}
	// A copy that differs from the first FAT (an edit cut short between
	// them) is made the same again.
	other := make([]byte, n)
	for f := int64(1); f < fr.nfats; f++ {
		if _, err := dev.ReadAt(other, fr.fat+f*fr.fatBytes); err != nil {
			return nil, fmt.Errorf("read FAT %d: %w", f+1, err)
		}
		for s := int64(0); s < n; s += sector {
			if !bytes.Equal(raw[s:min(s+sector, n)], other[s:min(s+sector, n)]) {
				e.dirty[s/sector] = true
			}
		}
	}
	for c := uint32(2); c < fr.clusters+2; c++ {
		if e.get(c) == 0 {
			e.free++
		}
	}
	if fr.info != 0 {
		info := make([]byte, sector)
		if _, err := dev.ReadAt(info, fr.info); err != nil {
			return nil, err
		}
		le := binary.LittleEndian
		if next := le.Uint32(info[492:]); le.Uint32(info[0:]) == 0x41615252 && le.Uint32(info[484:]) == 0x61417272 && fr.valid(next) {
			e.next = next
		}
	}
	if err := e.collect(); err != nil {
		return nil, err
	}
	return e, nil
}

const (
	endOfChain = 0x0FFFFFF8 // and above
	badCluster = 0x0FFFFFF7
)

func (e *Editor) get(c uint32) uint32 { return e.table[c] & 0x0FFFFFFF }

// set changes an entry in memory, keeping its 4 reserved bits, and notes
// its sector for flush.
func (e *Editor) set(c, v uint32) {
	switch {
	case e.get(c) == 0 && v != 0:
		e.free--
	case e.get(c) != 0 && v == 0:
		e.free++
	}
	e.table[c] = e.table[c]&0xF0000000 | v
	e.dirty[int64(c)*4/sector] = true
}

// chain is the clusters of the chain from first, checked: it stays in the
// file system, ends, and does not loop.
func (e *Editor) chain(first uint32) ([]uint32, error) {
	var out []uint32
	for c := first; ; {
		if !e.fr.valid(c) || len(out) > int(e.fr.clusters) {
			return nil, errors.New("a cluster chain leaves the filesystem or loops")
		}
		out = append(out, c)
		switch next := e.get(c); {
		case next >= endOfChain:
			return out, nil
		case next == 0 || next == badCluster:
			return nil, fmt.Errorf("a cluster chain runs into a free or bad cluster (%d)", c)
		default:
			c = next
		}
	}
}

// folder is the entries of the folder at cluster c and the byte offset on
// the device of each one's short record.
func (e *Editor) folder(c uint32) ([]entry, []int64, error) {
	cl, err := e.chain(c)
	if err != nil {
		return nil, nil, err
	}
	if int64(len(cl))*e.fr.csize > e.fr.maxFolder {
		return nil, nil, fmt.Errorf("a folder of over %d bytes", e.fr.maxFolder)
	}
	raw := make([]byte, int64(len(cl))*e.fr.csize)
	for i, c := range cl {
		if _, err := e.dev.ReadAt(raw[int64(i)*e.fr.csize:][:e.fr.csize], e.offset(c)); err != nil {
			return nil, nil, err
		}
	}
	ents := records(raw)
	at := make([]int64, len(ents))
	for i, en := range ents {
		at[i] = e.offset(cl[int64(en.at)/e.fr.csize]) + int64(en.at)%e.fr.csize
	}
	return ents, at, nil
}

func (e *Editor) offset(c uint32) int64 { return e.fr.data + int64(c-2)*e.fr.csize }

// collect frees the clusters in use that no file or folder reaches. It
// changes nothing unless the whole tree reads cleanly, each cluster in one
// chain only.
func (e *Editor) collect() error {
	reached := make([]bool, len(e.table))
	mark := func(first uint32) error {
		cl, err := e.chain(first)
		if err != nil {
			return err
		}
		for _, c := range cl {
			if reached[c] {
				return fmt.Errorf("cluster %d is in two chains", c)
			}
			reached[c] = true
		}
		return nil
	}
	var walk func(c uint32, depth int) error
	walk = func(c uint32, depth int) error {
		if depth > 16 {
			return errors.New("folders nested over 16 deep")
		}
		if err := mark(c); err != nil {
			return err
		}
		ents, _, err := e.folder(c)
		if err != nil {
			return err
		}
		for _, en := range ents {
			switch {
			case en.dot:
			case en.dir:
				if err := walk(en.cluster, depth+1); err != nil {
					return err
				}
			case en.cluster != 0:
				if err := mark(en.cluster); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(e.fr.root, 0); err != nil {
		// Not ours to mend, nor to edit: freeing a chain that another file
		// shares, or one a walk did not reach, would lose that file.
		return fmt.Errorf("its file system does not read cleanly (%w): check it with fsck.fat", err)
	}
	for c := uint32(2); c < uint32(len(e.table)); c++ {
		if v := e.get(c); v != 0 && v != badCluster && !reached[c] {
			e.set(c, 0)
		}
	}
	return e.flush(true)
}

// flush writes the changed sectors of the FAT to each copy, and the free
// count and the next free cluster to FSInfo where they changed, then
// syncs if sync.
func (e *Editor) flush(sync bool) error {
	wrote := len(e.dirty) > 0
	// The changed sectors, in runs: one write per run and copy.
	sectors := slices.Sorted(maps.Keys(e.dirty))
	for len(sectors) > 0 {
		k := 1
		for k < len(sectors) && sectors[k] == sectors[0]+int64(k) {
			k++
		}
		buf := make([]byte, int64(k)*sector)
		for i := range int64(k) * sector / 4 {
			if c := sectors[0]*sector/4 + i; c < int64(len(e.table)) {
				binary.LittleEndian.PutUint32(buf[i*4:], e.table[c])
			}
		}
		for f := range e.fr.nfats {
			if _, err := e.dev.WriteAt(buf, e.fr.fat+f*e.fr.fatBytes+sectors[0]*sector); err != nil {
				return fmt.Errorf("write the FAT: %w", err)
			}
		}
		sectors = sectors[k:]
	}
	clear(e.dirty)
	buf := make([]byte, sector)
	if e.fr.info != 0 {
		if _, err := e.dev.ReadAt(buf, e.fr.info); err != nil {
			return err
		}
		le := binary.LittleEndian
		if le.Uint32(buf[0:]) == 0x41615252 && le.Uint32(buf[484:]) == 0x61417272 &&
			(le.Uint32(buf[488:]) != e.free || le.Uint32(buf[492:]) != e.next) {
			le.PutUint32(buf[488:], e.free)
			le.PutUint32(buf[492:], e.next)
			if _, err := e.dev.WriteAt(buf, e.fr.info); err != nil {
				return fmt.Errorf("write FSInfo: %w", err)
			}
			wrote = true
		}
	}
	if !wrote || !sync {
		return nil
	}
	return e.dev.Sync()
}

// Free is the free space, in bytes.
func (e *Editor) Free() int64 { return int64(e.free) * e.fr.csize }

// Replace gives the file at path its new bytes at once: Stage, then
// Commit.
func (e *Editor) Replace(path string, size int64, mtime time.Time, write func(io.Writer) error) error {
	if err := e.Stage(path, size, mtime, write); err != nil {
		return err
	}
	return e.Commit()
}

// staged is a file whose new bytes are written, waiting for Commit.
type staged struct {
	at         int64  // its short record on the device
	old, first uint32 // its chains, old and new
	size       uint32
	mtime      time.Time
}

// Stage writes the new bytes of the file at path ("b/vmlinuz"; names
// compare without regard to case), size bytes that write writes to the
// writer it is given, into free clusters, where nothing references them
// until Commit. The file must exist: an error wrapping ErrNoFile says it
// does not, and nothing was written. A file that cannot fit even once the
// staged files' and its own old clusters come free is refused with
// ErrTooSmall, nothing written. Else, if the free space cannot hold the new
// file, the files staged before are committed first (their old clusters
// come free); if it still cannot hold it beside the old one, the old one is
// let go first (a cut then leaves the file empty). After an error, Commit
// no more.
func (e *Editor) Stage(path string, size int64, mtime time.Time, write func(io.Writer) error) error {
	at, old, err := e.find(path)
	if err != nil {
		return err
	}
	if size > 0xFFFFFFFF {
		return fmt.Errorf("%s: %d bytes is more than a FAT file holds", path, size)
	}
	for _, f := range e.staged {
		if f.at == at {
			return fmt.Errorf("%s is staged already", path)
		}
	}
	need := uint32((size + e.fr.csize - 1) / e.fr.csize)
	var held uint32
	if old != 0 {
		cl, _ := e.chain(old) // checked by find
		held = uint32(len(cl))
	}
	var pending uint32 // what committing the staged files frees
	for _, f := range e.staged {
		if f.old != 0 {
			cl, _ := e.chain(f.old) // checked by find
			pending += uint32(len(cl))
		}
	}
	if need > e.free+held+pending {
		mib := func(n uint32) string { return fmt.Sprintf("%.1f MiB", float64(int64(n)*e.fr.csize)/(1<<20)) }
		return fmt.Errorf("%s needs %s; the boot partition has %s free, %s more once the files before it are in, and the file's own %s: %w",
			path, mib(need), mib(e.free), mib(pending), mib(held), ErrTooSmall)
	}
	if need > e.free && pending > 0 {
		if err := e.Commit(); err != nil {
			return err
		}
	}
	if need > e.free && old != 0 {
		if err := e.record(staged{at: at, mtime: mtime}); err != nil {
			return err
		}
		if err := e.dev.Sync(); err != nil {
			return err
		}
		if err := e.release(old); err != nil {
			return err
		}
		old = 0
	}
	runs := e.allocate(need)
	w := &runWriter{dev: e.dev, runs: runs, csize: e.fr.csize, off: e.offset}
	if err := write(w); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if w.n != size {
		return fmt.Errorf("write %s: %d bytes, want %d", path, w.n, size)
	}
	// The chain, in memory for now: Commit writes it.
	f := staged{at: at, old: old, size: uint32(size), mtime: mtime}
	var prev uint32
	for _, r := range runs {
		for c := r.first; c < r.first+r.n; c++ {
			if prev == 0 {
				f.first = c
			} else {
				e.set(prev, c)
			}
			prev = c
		}
	}
	if prev != 0 {
		e.set(prev, 0x0FFFFFFF)
		e.next = prev + 1
		if !e.fr.valid(e.next) {
			e.next = 2
		}
	}
	e.staged = append(e.staged, f)
	return nil
}

// Commit switches the staged files to their new bytes. Their bytes and
// chains are made durable together (nothing references either yet), then
// each file's folder record is rewritten and made durable: from then on
// the files are the new ones. Last the old chains are freed, not synced (a
// cut leaves them to the next Edit).
func (e *Editor) Commit() error {
	if err := e.flush(true); err != nil {
		return err
	}
	for _, f := range e.staged {
		if err := e.record(f); err != nil {
			return err
		}
	}
	if err := e.dev.Sync(); err != nil {
		return err
	}
	for _, f := range e.staged {
		if f.old != 0 {
			cl, err := e.chain(f.old)
			if err != nil {
				return err
			}
			for _, c := range cl {
				e.set(c, 0)
			}
		}
	}
	e.staged = nil
	return e.flush(false)
}

// find is the device offset of the short record of the file at path, and
// its first cluster.
func (e *Editor) find(path string) (int64, uint32, error) {
	c := e.fr.root
	parts := strings.Split(strings.Trim(path, "/"), "/")
	for i, name := range parts {
		ents, at, err := e.folder(c)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %w", path, err)
		}
		j := lookup(ents, name)
		last := i == len(parts)-1
		switch {
		case j < 0 || ents[j].dir == last:
			return 0, 0, fmt.Errorf("%s: %w", path, ErrNoFile)
		case last:
			if ents[j].cluster != 0 {
				if _, err := e.chain(ents[j].cluster); err != nil {
					return 0, 0, fmt.Errorf("%s: %w", path, err)
				}
			}
			return at[j], ents[j].cluster, nil
		}
		c = ents[j].cluster
	}
	return 0, 0, fmt.Errorf("%s: %w", path, ErrNoFile)
}

// lookup is the index of the entry called name, or -1.
func lookup(ents []entry, name string) int {
	for i, en := range ents {
		if strings.EqualFold(en.name, name) {
			return i
		}
	}
	return -1
}

// record rewrites the short record of f: its first cluster, size and
// times. 32 bytes in one sector: the disk holds the old or the new.
func (e *Editor) record(f staged) error {
	r := make([]byte, 32)
	if _, err := e.dev.ReadAt(r, f.at); err != nil {
		return err
	}
	date, tm := dosTime(f.mtime)
	binary.LittleEndian.PutUint16(r[18:], date) // last access
	binary.LittleEndian.PutUint16(r[20:], uint16(f.first>>16))
	binary.LittleEndian.PutUint16(r[22:], tm)
	binary.LittleEndian.PutUint16(r[24:], date)
	binary.LittleEndian.PutUint16(r[26:], uint16(f.first))
	binary.LittleEndian.PutUint32(r[28:], f.size)
	if _, err := e.dev.WriteAt(r, f.at); err != nil {
		return fmt.Errorf("write a folder record: %w", err)
	}
	return nil
}

// release frees the chain from first, which nothing references any more,
// and syncs.
func (e *Editor) release(first uint32) error {
	cl, err := e.chain(first)
	if err != nil {
		return err
	}
	for _, c := range cl {
		e.set(c, 0)
	}
	return e.flush(true)
}

// run is n clusters in a row from first.
type run struct{ first, n uint32 }

// allocate picks n free clusters, in one run if the file system has one
// that long (the first from e.next on), else the first free ones. It marks
// nothing: the chain is written once the data is.
func (e *Editor) allocate(n uint32) []run {
	if n == 0 {
		return nil
	}
	end := uint32(len(e.table))
	for _, span := range [][2]uint32{{e.next, end}, {2, e.next}} {
		for c := span[0]; c < span[1]; {
			if e.get(c) != 0 {
				c++
				continue
			}
			start := c
			for c < end && e.get(c) == 0 && c-start < n {
				c++
			}
			if c-start == n {
				return []run{{start, n}}
			}
		}
	}
	var runs []run
	for c := uint32(2); c < end && n > 0; c++ {
		if e.get(c) != 0 {
			continue
		}
		if k := len(runs) - 1; k >= 0 && runs[k].first+runs[k].n == c {
			runs[k].n++
		} else {
			runs = append(runs, run{c, 1})
		}
		n--
	}
	return runs
}

// runWriter writes a stream across runs of clusters.
type runWriter struct {
	dev   io.WriterAt
	runs  []run
	csize int64
	off   func(uint32) int64
	n     int64 // written
	done  int64 // bytes of the runs before runs[0]
}

func (w *runWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		if len(w.runs) == 0 {
			return written, errors.New("more bytes than the file's size")
		}
		r := w.runs[0]
		in := w.n - w.done
		room := int64(r.n)*w.csize - in
		k := min(int64(len(p)), room)
		if _, err := w.dev.WriteAt(p[:k], w.off(r.first)+in); err != nil {
			return written, err
		}
		written += int(k)
		w.n += k
		p = p[k:]
		if k == room {
			w.done += int64(r.n) * w.csize
			w.runs = w.runs[1:]
		}
	}
	return written, nil
}
