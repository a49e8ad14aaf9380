package fat

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf16"
)

// A Reader reads files from a FAT32 filesystem that may come from anywhere:
// every field it uses is checked against the filesystem's size, no cluster
// chain is followed further than the filesystem has clusters (a chain that
// loops is an error), and no file or folder larger than asked is read.
type Reader struct {
	r         io.ReaderAt
	csize     int64  // bytes per cluster
	fat       int64  // byte offset of the first FAT
	data      int64  // byte offset of cluster 2
	clusters  uint32 // data clusters
	root      uint32 // the root folder's first cluster
	maxFolder int64
	nfats     int64 // FATs, each fatBytes long from fat on
	fatBytes  int64
	inUse     int64 // byte offset of the FAT chains are read from
	mirrored  bool  // every FAT is written, not only the one in use
	info      int64 // byte offset of the FSInfo sector, 0 if none
}

// NewReader checks the boot sector of the FAT32 filesystem of size bytes
// at the start of r.
func NewReader(r io.ReaderAt, size int64) (*Reader, error) {
	b := make([]byte, sector)
	if _, err := r.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("FAT boot sector: %w", err)
	}
	le16 := func(o int) int64 { return int64(binary.LittleEndian.Uint16(b[o:])) }
	le32 := func(o int) int64 { return int64(binary.LittleEndian.Uint32(b[o:])) }
	bps, spc, res, nfats := le16(11), int64(b[13]), le16(14), int64(b[16])
	total, fatSecs := le32(32), le32(36)
	if total == 0 {
		total = le16(19)
	}
	bad := func(what string) error { return fmt.Errorf("not a FAT32 filesystem: %s", what) }
	switch {
	case b[510] != 0x55 || b[511] != 0xAA:
		return nil, bad("no boot signature")
	case le16(17) != 0 || le16(22) != 0:
		return nil, bad("FAT12 or FAT16 (it has a root folder of fixed size or a 16-bit FAT size); make it again with mkfs.vfat -F 32")
	case le16(42) != 0:
		return nil, bad(fmt.Sprintf("FAT32 version %d.%d, not 0.0", b[43], b[42]))
	case bps < 512 || bps > 4096 || bps&(bps-1) != 0:
		return nil, bad(fmt.Sprintf("%d bytes per sector", bps))
	case spc == 0 || spc&(spc-1) != 0:
		return nil, bad(fmt.Sprintf("%d sectors per cluster", spc))
	case res == 0 || nfats == 0 || fatSecs == 0:
		return nil, bad("no FAT")
	case total*bps > size:
		return nil, bad(fmt.Sprintf("%d sectors, more than its %d bytes hold", total, size))
	}
	dataSec := res + nfats*fatSecs
	if dataSec >= total {
		return nil, bad("its FATs fill it")
	}
	fr := &Reader{r: r, csize: spc * bps, fat: res * bps, data: dataSec * bps,
		root: uint32(le32(44)), maxFolder: 1 << 20, nfats: nfats, fatBytes: fatSecs * bps}
	// Bit 7 of the flags at 40 turns mirroring off: then only the FAT
	// numbered in bits 0-3 is in use.
	fr.inUse, fr.mirrored = fr.fat, true
	if ext := le16(40); ext&0x80 != 0 {
		if ext&0xF >= nfats {
			return nil, bad(fmt.Sprintf("FAT %d is in use, of %d", ext&0xF+1, nfats))
		}
		fr.inUse, fr.mirrored = fr.fat+(ext&0xF)*fatSecs*bps, false
	}
	if info := le16(48); info > 0 && info < res {
		fr.info = info * bps
	}
	fr.clusters = uint32((total - dataSec) / spc)
	if fatSecs*bps < (int64(fr.clusters)+2)*4 {
		return nil, bad("its FAT is too small for its clusters")
	}
	if !fr.valid(fr.root) {
		return nil, bad("its root folder is outside it")
	}
	return fr, nil
}

func (fr *Reader) valid(c uint32) bool { return c >= 2 && c < fr.clusters+2 }

// chain reads the cluster chain from first, at most max bytes of it.
func (fr *Reader) chain(first uint32, max int64) ([]byte, error) {
	var out []byte
	var e [4]byte
	seen := map[uint32]bool{}
	for c := first; int64(len(out)) < max; {
		if !fr.valid(c) || seen[c] {
			return nil, errors.New("a cluster chain leaves the filesystem or loops")
		}
		seen[c] = true
		buf := make([]byte, min(fr.csize, max-int64(len(out))))
		if _, err := fr.r.ReadAt(buf, fr.data+int64(c-2)*fr.csize); err != nil {
			return nil, err
		}
		out = append(out, buf...)
		if _, err := fr.r.ReadAt(e[:], fr.inUse+int64(c)*4); err != nil {
			return nil, err
		}
		if c = binary.LittleEndian.Uint32(e[:]) & 0x0FFFFFFF; c >= 0x0FFFFFF8 {
			break
		}
	}
	return out, nil
}

// entry is a folder's record of a file or folder.
type entry struct {
	name    string
	dot     bool // "." or "..", by its short name
	dir     bool
	cluster uint32
	size    int64
	at      int // the short record's offset in the folder's bytes
}

// folder lists the entries of the folder at cluster c.
func (fr *Reader) folder(c uint32) ([]entry, error) {
	raw, err := fr.chain(c, fr.maxFolder)
	if err != nil {
		return nil, err
	}
	return records(raw), nil
}

// records lists the entries in a folder's bytes, "." and ".." among them.
// As Linux reads a folder: a free record (first byte 0) does not end it,
// and a long name belongs to the short record after it only if its
// checksum is that short name's.
func records(raw []byte) []entry {
	var out []entry
	var long []uint16
	var sum byte
	for i := 0; i+32 <= len(raw); i += 32 {
		r := raw[i : i+32]
		switch {
		case r[0] == 0 || r[0] == 0xE5:
			long = nil
			continue
		case r[11] == 0x0F: // a part of a long name; the last part comes first
			var part []uint16
			for _, o := range []int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30} {
				part = append(part, binary.LittleEndian.Uint16(r[o:]))
			}
			if r[0]&0x40 != 0 || r[13] != sum {
				long, sum = nil, r[13]
			}
			long = append(part, long...)
			continue
		case r[11]&0x08 != 0: // the volume label
			long = nil
			continue
		}
		short := [11]byte(r[:11])
		name := shortName(r)
		if long != nil && checksum(short) == sum {
			if end := indexUint16(long, 0); end >= 0 {
				long = long[:end]
			}
			name = string(utf16.Decode(long))
		}
		long = nil // used, or not this record's
		cl := uint32(binary.LittleEndian.Uint16(r[20:]))<<16 | uint32(binary.LittleEndian.Uint16(r[26:]))
		out = append(out, entry{name: name, dot: short == pad11(".") || short == pad11(".."), dir: r[11]&0x10 != 0, cluster: cl, size: int64(binary.LittleEndian.Uint32(r[28:])), at: i})
	}
	return out
}

func shortName(r []byte) string {
	base, ext := strings.TrimRight(string(r[:8]), " "), strings.TrimRight(string(r[8:11]), " ")
	if ext != "" {
		return base + "." + ext
	}
	return base
}

func indexUint16(s []uint16, v uint16) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// ReadFile reads the file at path ("a/initrd.img"; names compare without
// regard to case, as FAT does), refusing one larger than max bytes.
func (fr *Reader) ReadFile(path string, max int64) ([]byte, error) {
	c := fr.root
	parts := strings.Split(strings.Trim(path, "/"), "/")
	for i, name := range parts {
		entries, err := fr.folder(c)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		var found *entry
		if j := lookup(entries, name); j >= 0 {
			found = &entries[j]
		}
		last := i == len(parts)-1
		switch {
		case found == nil || found.dir == last:
			return nil, fmt.Errorf("%s: %w", path, ErrNoFile)
		case !last:
			c = found.cluster
			continue
		case found.size > max:
			return nil, fmt.Errorf("%s is %d bytes, more than the %d it may be", path, found.size, max)
		case found.size == 0:
			return []byte{}, nil
		}
		data, err := fr.chain(found.cluster, found.size)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if int64(len(data)) != found.size {
			return nil, fmt.Errorf("%s: its clusters hold %d of its %d bytes", path, len(data), found.size)
		}
		return data, nil
	}
	return nil, fmt.Errorf("%s: %w", path, ErrNoFile)
}
