package inspect

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// FuzzImage feeds the readers a small image changed at will: a partition
// table, a FAT and an initramfs from anywhere. Nothing may panic, loop or
// read past its bounds.
func FuzzImage(f *testing.F) {
	seed := tinyImage(f)
	if info, err := BuildInfo(writeTemp(f, seed)); err != nil || info.Board != "rpi3" {
		f.Fatalf("the seed image: %+v, %v", info, err)
	}
	f.Add(seed)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, img []byte) {
		buildInfo("x.img", bytes.NewReader(img), int64(len(img)))
	})
}

// tinyImage is an MBR image of 36 KiB whose first partition is a FAT of
// 64 sectors with a/initrd.img, two clusters long, holding build.json.
func tinyImage(tb testing.TB) []byte {
	const first, sectors = 8, 64
	img := make([]byte, (first+sectors)*512)
	le16 := binary.LittleEndian.PutUint16
	le32 := binary.LittleEndian.PutUint32
	img[510], img[511] = 0x55, 0xAA
	img[446+4] = 0x0c
	le32(img[446+8:], first)
	le32(img[446+12:], sectors)

	fs := img[first*512:]
	le16(fs[11:], 512) // bytes per sector
	fs[13] = 1         // sectors per cluster
	le16(fs[14:], 1)   // reserved sectors
	fs[16] = 1         // FATs
	le32(fs[32:], sectors)
	le32(fs[36:], 1) // sectors per FAT
	le32(fs[44:], 2) // the root folder's cluster
	fs[510], fs[511] = 0x55, 0xAA
	initrd := initramfs(tb, map[string]string{"usr/lib/cairn/build.json": `{"board":"rpi3","family":"rpi-uboot"}`})
	if len(initrd) > 1024 {
		tb.Fatalf("the initramfs is %d bytes, more than two clusters", len(initrd))
	}
	fat := fs[512:]
	for c, next := range []uint32{0x0FFFFFF8, 0x0FFFFFFF, 0x0FFFFFFF, 0x0FFFFFFF, 5, 0x0FFFFFFF} {
		le32(fat[4*c:], next)
	}
	cluster := func(c int) []byte { return fs[(2+c-2)*512:] }
	entry := func(b []byte, name string, attr byte, c, size uint32) {
		copy(b, name)
		b[11] = attr
		le16(b[20:], uint16(c>>16))
		le16(b[26:], uint16(c))
		le32(b[28:], size)
	}
	entry(cluster(2), "A          ", 0x10, 3, 0)
	entry(cluster(3), "INITRD  IMG", 0x20, 4, uint32(len(initrd)))
	copy(cluster(4), initrd)
	return img
}

func writeTemp(tb testing.TB, b []byte) string {
	p := filepath.Join(tb.TempDir(), "x.img")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		tb.Fatal(err)
	}
	return p
}
