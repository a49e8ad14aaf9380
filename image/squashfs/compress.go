package squashfs

import (
	"bytes"
	"compress/zlib"
	"fmt"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Compressor ids in the superblock.
const (
	idGzip = 1
	idXZ   = 4
	idZstd = 6
)

type compressor interface {
	id() uint16
	compress(dst *bytes.Buffer, src []byte) error
}

func newCompressor(name string, blockSize int) (compressor, error) {
	switch name {
	case "gzip":
		return gzipC{}, nil
	case "zstd", "":
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBetterCompression), zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false))
		if err != nil {
			return nil, err
		}
		return zstdC{enc}, nil
	case "xz":
		return xzC{blockSize}, nil
	}
	return nil, fmt.Errorf("squashfs: unknown compression %q: use zstd, gzip or xz", name)
}

type gzipC struct{}

func (gzipC) id() uint16 { return idGzip }
func (gzipC) compress(dst *bytes.Buffer, src []byte) error {
	w, err := zlib.NewWriterLevel(dst, zlib.BestCompression)
	if err != nil {
		return err
	}
	if _, err := w.Write(src); err != nil {
		return err
	}
	return w.Close()
}

type zstdC struct{ enc *zstd.Encoder }

func (zstdC) id() uint16 { return idZstd }
func (z zstdC) compress(dst *bytes.Buffer, src []byte) error {
	dst.Write(z.enc.EncodeAll(src, nil))
	return nil
}

type xzC struct{ dict int }

func (xzC) id() uint16 { return idXZ }
func (x xzC) compress(dst *bytes.Buffer, src []byte) error {
	// The kernel's xz decoder checks CRC32 and wants a dictionary no larger
	// than the block size.
	w, err := xz.WriterConfig{CheckSum: xz.CRC32, DictCap: x.dict}.NewWriter(dst)
	if err != nil {
		return err
	}
	if _, err := w.Write(src); err != nil {
		return err
	}
	return w.Close()
}
