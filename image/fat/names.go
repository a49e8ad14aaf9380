package fat

import (
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf16"
)

func pad11(s string) [11]byte {
	var b [11]byte
	for i := range b {
		b[i] = ' '
	}
	copy(b[:], s)
	return b
}

const shortChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789$%'-_@~`!(){}^#&"

// isShort reports whether name is already a valid upper-case 8.3 name.
func isShort(name string) bool {
	if name == "." || name == ".." {
		return true
	}
	base, ext, _ := strings.Cut(name, ".")
	if len(base) == 0 || len(base) > 8 || len(ext) > 3 || strings.Contains(ext, ".") {
		return false
	}
	for _, c := range base + ext {
		if !strings.ContainsRune(shortChars, c) {
			return false
		}
	}
	return true
}

func filterShort(s string) string {
	var b strings.Builder
	for _, c := range strings.ToUpper(s) {
		if strings.ContainsRune(shortChars, c) {
			b.WriteRune(c)
		}
	}
	return b.String()
}

// names returns the 8.3 entry name for name, unique among taken, and
// whether long-name entries must precede it.
func names(name string, taken map[string]bool) ([11]byte, bool) {
	if isShort(name) {
		base, ext, _ := strings.Cut(name, ".")
		var s [11]byte = pad11(base)
		copy(s[8:], pad3(ext))
		taken[string(s[:])] = true
		return s, false
	}
	base, ext := name, ""
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		base, ext = name[:i], name[i+1:]
	}
	base, ext = filterShort(base), filterShort(ext)
	if len(ext) > 3 {
		ext = ext[:3]
	}
	if base == "" {
		base = "_"
	}
	for n := 1; ; n++ {
		suffix := fmt.Sprintf("~%d", n)
		b := base
		if len(b)+len(suffix) > 8 {
			b = b[:8-len(suffix)]
		}
		s := pad11(b + suffix)
		copy(s[8:], pad3(ext))
		if !taken[string(s[:])] {
			taken[string(s[:])] = true
			return s, true
		}
	}
}

func pad3(s string) []byte { return []byte((s + "   ")[:3]) }

func lfnCount(name string) int {
	if isShort(name) {
		return 0
	}
	return (len(utf16.Encode([]rune(name))) + 12) / 13
}

func checksum(s [11]byte) byte {
	var sum byte
	for _, c := range s {
		sum = (sum&1)<<7 + sum>>1 + c
	}
	return sum
}

// lfnEntries returns the long-name records, in the order they are stored
// (last part first).
func lfnEntries(name string, sum byte) [][]byte {
	u := utf16.Encode([]rune(name))
	n := (len(u) + 12) / 13
	padded := make([]uint16, n*13)
	for i := range padded {
		switch {
		case i < len(u):
			padded[i] = u[i]
		case i == len(u):
			padded[i] = 0
		default:
			padded[i] = 0xFFFF
		}
	}
	out := make([][]byte, 0, n)
	for seq := n; seq >= 1; seq-- {
		part := padded[(seq-1)*13 : seq*13]
		b := make([]byte, 32)
		b[0] = byte(seq)
		if seq == n {
			b[0] |= 0x40
		}
		b[11] = 0x0F
		b[13] = sum
		for i, c := range part {
			var off int
			switch {
			case i < 5:
				off = 1 + i*2
			case i < 11:
				off = 14 + (i-5)*2
			default:
				off = 28 + (i-11)*2
			}
			binary.LittleEndian.PutUint16(b[off:], c)
		}
		out = append(out, b)
	}
	return out
}
