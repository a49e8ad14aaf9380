// Package disk finds the boot disk by the identifier on the kernel command
// line, names its partitions, and creates or grows the data partition in the
// free space after the slots. It changes the partition table only by adding
// or enlarging the last partition, and tells the kernel with BLKPG, so a
// mounted root is never disturbed.
package disk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unsafe"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/diskfs/go-diskfs/partition/mbr"
	"golang.org/x/sys/unix"
)

// ErrNotFound is returned while no disk carries the identifier.
var ErrNotFound = errors.New("boot disk not found")

// Disk is a whole block device.
type Disk struct {
	Name string // mmcblk0, vda, sda
	Dev  string // /dev/mmcblk0
	GPT  bool
}

// Find scans /sys/block for the disk whose MBR id (8 hex digits) or GPT disk
// GUID is id.
func Find(id string) (*Disk, error) {
	names, _ := filepath.Glob("/sys/block/*")
	for _, n := range names {
		name := filepath.Base(n)
		if strings.HasPrefix(name, "loop") || strings.HasPrefix(name, "ram") {
			continue
		}
		dev := "/dev/" + name
		got, isGPT, err := identifier(dev)
		if err == nil && strings.EqualFold(got, id) {
			return &Disk{Name: name, Dev: dev, GPT: isGPT}, nil
		}
	}
	return nil, fmt.Errorf("%w: no disk has identifier %s (disks: %s)", ErrNotFound, id, strings.Join(baseNames(names), " "))
}

func baseNames(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = filepath.Base(p)
	}
	return out
}

// identifier reads a disk's MBR id or GPT GUID.
func identifier(dev string) (string, bool, error) {
	f, err := os.Open(dev)
	if err != nil {
		return "", false, err
	}
	defer f.Close()
	buf := make([]byte, 1024)
	if _, err := f.ReadAt(buf, 0); err != nil {
		return "", false, err
	}
	if bytes.Equal(buf[512:520], []byte("EFI PART")) {
		g := buf[512+56 : 512+72]
		return fmt.Sprintf("%08x-%04x-%04x-%x-%x", binary.LittleEndian.Uint32(g[0:]), binary.LittleEndian.Uint16(g[4:]),
			binary.LittleEndian.Uint16(g[6:]), g[8:10], g[10:16]), true, nil
	}
	if buf[510] != 0x55 || buf[511] != 0xAA {
		return "", false, errors.New("no partition table")
	}
	return fmt.Sprintf("%08x", binary.LittleEndian.Uint32(buf[440:])), false, nil
}

// Part returns the device path of partition n.
func (d *Disk) Part(n int) string {
	if last := d.Name[len(d.Name)-1]; last >= '0' && last <= '9' {
		return fmt.Sprintf("%sp%d", d.Dev, n)
	}
	return fmt.Sprintf("%s%d", d.Dev, n)
}

// Size is the disk's size in bytes.
func (d *Disk) Size() (int64, error) {
	data, err := os.ReadFile("/sys/block/" + d.Name + "/size")
	if err != nil {
		return 0, err
	}
	var sectors int64
	_, err = fmt.Sscan(string(data), &sectors)
	return sectors * 512, err
}

// WaitPart waits for the kernel to show partition n.
func (d *Disk) WaitPart(n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(d.Part(n)); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not appear", d.Part(n))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

const align = 2048 // sectors: 1 MiB

// DataPartition makes sure partition num exists and reaches the end of the
// disk (less GPT's backup area), and reports whether it was created (the
// caller then formats it) and whether it grew (the caller resizes the
// filesystem). minBytes is the smallest size accepted for a new partition;
// one that exists is kept and grown whatever its size, so that a board
// profile asking for more later cannot stop a node that has its data.
func (d *Disk) DataPartition(num int, minBytes int64) (created, grew bool, err error) {
	size, err := d.Size()
	if err != nil {
		return false, false, err
	}
	f, err := os.OpenFile(d.Dev, os.O_RDWR|os.O_EXCL, 0)
	if err != nil && errors.Is(err, unix.EBUSY) {
		f, err = os.OpenFile(d.Dev, os.O_RDWR, 0)
	}
	if err != nil {
		return false, false, err
	}
	defer f.Close()
	if d.GPT {
		return d.gptData(f, num, size, minBytes)
	}
	return d.mbrData(f, num, size, minBytes)
}

func (d *Disk) gptData(f *os.File, num int, size, minBytes int64) (bool, bool, error) {
	t, err := gpt.Read(file.New(f, false), 512, 512)
	if err != nil {
		return false, false, fmt.Errorf("read GPT: %w", err)
	}
	lastUsable := uint64(size/512) - 34
	var data, prev *gpt.Partition
	for _, p := range t.Partitions {
		if p.Index == num && p.Type != gpt.Unused {
			data = p
		}
		if p.Index == num-1 {
			prev = p
		}
	}
	if prev == nil {
		return false, false, fmt.Errorf("partition %d, which the data partition follows, is missing", num-1)
	}
	start := (prev.End + 1 + align - 1) / align * align
	end := lastUsable/align*align - 1
	if data != nil {
		start = data.Start
	}
	if data == nil && int64(end-start+1)*512 < minBytes {
		return false, false, fmt.Errorf("only %d MiB free after partition %d; the data partition needs %d MiB: use a larger card or disk", int64(end-start+1)*512>>20, num-1, minBytes>>20)
	}
	if data != nil && data.End >= end {
		return false, false, nil
	}
	created := data == nil
	if created {
		data = &gpt.Partition{Index: num, Name: "cairn-data", Type: gpt.LinuxFilesystem, Start: start}
		t.Partitions = append(t.Partitions, data)
	}
	data.End, data.Size = end, (end-start+1)*512
	t.ProtectiveMBR = true
	// Writing the table also moves the backup GPT to the new end of the disk.
	if err := t.Write(f, size); err != nil {
		return false, false, fmt.Errorf("write GPT: %w", err)
	}
	return created, !created, tell(f, num, int64(start)*512, int64(data.Size), created)
}

func (d *Disk) mbrData(f *os.File, num int, size, minBytes int64) (bool, bool, error) {
	t, err := mbr.Read(f, 512, 512)
	if err != nil {
		return false, false, fmt.Errorf("read MBR: %w", err)
	}
	for len(t.Partitions) < num {
		t.Partitions = append(t.Partitions, &mbr.Partition{Index: len(t.Partitions) + 1, Type: mbr.Empty})
	}
	prev, data := t.Partitions[num-2], t.Partitions[num-1]
	if prev.Type == mbr.Empty {
		return false, false, fmt.Errorf("partition %d, which the data partition follows, is missing", num-1)
	}
	start := (prev.Start + prev.Size + align - 1) / align * align
	end := uint32(size/512) / align * align
	if data.Type != mbr.Empty {
		start = data.Start
	}
	if data.Type == mbr.Empty && int64(end-start)*512 < minBytes {
		return false, false, fmt.Errorf("only %d MiB free after partition %d; the data partition needs %d MiB: use a larger card or disk", int64(end-start)*512>>20, num-1, minBytes>>20)
	}
	if data.Type != mbr.Empty && data.Start+data.Size >= end {
		return false, false, nil
	}
	created := data.Type == mbr.Empty
	// Keep the disk identifier: go-diskfs rewrites the whole sector.
	id := make([]byte, 4)
	if _, err := f.ReadAt(id, 440); err != nil {
		return false, false, err
	}
	t.Partitions[num-1] = &mbr.Partition{Index: num, Type: mbr.Linux, Start: start, Size: end - start}
	if err := t.Write(f, size); err != nil {
		return false, false, fmt.Errorf("write MBR: %w", err)
	}
	if _, err := f.WriteAt(id, 440); err != nil {
		return false, false, err
	}
	return created, !created, tell(f, num, int64(start)*512, int64(end-start)*512, created)
}

// blkpg mirrors struct blkpg_ioctl_arg and struct blkpg_partition.
type blkpgArg struct {
	op      int32
	flags   int32
	datalen int32
	data    uintptr
}

type blkpgPart struct {
	start   int64
	length  int64
	pno     int32
	devname [64]byte
	volname [64]byte
}

// tell informs the kernel of the new or enlarged partition.
func tell(f *os.File, num int, start, length int64, add bool) error {
	if err := f.Sync(); err != nil {
		return err
	}
	op := int32(unix.BLKPG_RESIZE_PARTITION)
	if add {
		op = unix.BLKPG_ADD_PARTITION
	}
	p := blkpgPart{start: start, length: length, pno: int32(num)}
	arg := blkpgArg{op: op, datalen: int32(unsafe.Sizeof(p)), data: uintptr(unsafe.Pointer(&p))}
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKPG, uintptr(unsafe.Pointer(&arg))); e != 0 {
		return fmt.Errorf("tell the kernel about partition %d: %w", num, e)
	}
	return nil
}
