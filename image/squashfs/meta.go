package squashfs

import (
	"bytes"
	"encoding/binary"
)

const metaSize = 8192

// metaWriter builds a metadata table: a run of blocks, each holding up to
// 8 KiB of uncompressed data, stored compressed when that is smaller.
type metaWriter struct {
	c   compressor
	out bytes.Buffer // finished blocks
	cur []byte       // data of the block being filled
}

// pos is where the next byte goes: the offset of its block from the start of
// the table, and the offset inside the uncompressed block.
func (m *metaWriter) pos() (block uint32, offset uint16) {
	return uint32(m.out.Len()), uint16(len(m.cur))
}

func (m *metaWriter) write(p []byte) error {
	for len(p) > 0 {
		n := min(metaSize-len(m.cur), len(p))
		m.cur = append(m.cur, p[:n]...)
		p = p[n:]
		if len(m.cur) == metaSize {
			if err := m.flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *metaWriter) flush() error {
	if len(m.cur) == 0 {
		return nil
	}
	var z bytes.Buffer
	if err := m.c.compress(&z, m.cur); err != nil {
		return err
	}
	var hdr [2]byte
	if z.Len() < len(m.cur) {
		binary.LittleEndian.PutUint16(hdr[:], uint16(z.Len()))
		m.out.Write(hdr[:])
		m.out.Write(z.Bytes())
	} else {
		binary.LittleEndian.PutUint16(hdr[:], uint16(len(m.cur))|0x8000)
		m.out.Write(hdr[:])
		m.out.Write(m.cur)
	}
	m.cur = m.cur[:0]
	return nil
}

// finish flushes the last block and returns the table's bytes.
func (m *metaWriter) finish() ([]byte, error) {
	if err := m.flush(); err != nil {
		return nil, err
	}
	return m.out.Bytes(), nil
}

// le is a small little-endian encoder for inode and directory records.
type le []byte

func (b le) u16(v uint16) le { return binary.LittleEndian.AppendUint16(b, v) }
func (b le) u32(v uint32) le { return binary.LittleEndian.AppendUint32(b, v) }
func (b le) u64(v uint64) le { return binary.LittleEndian.AppendUint64(b, v) }
