//go:build linux

// Package flash writes a disk image to a card or stick: it describes the
// device from sysfs, refuses one that is mounted, holds the running
// system, is a partition or is too small, writes only the image's data
// (its holes stay as they are, as bmaptool does), and reads back what it
// wrote to compare hashes.
package flash

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/cairn-os/cairn/internal/progress"
	"golang.org/x/sys/unix"
)

// Device is a whole disk as the kernel describes it.
type Device struct {
	Path      string // what the user named, e.g. /dev/sdb
	Sys       string // its folder in /sys/class/block
	Size      int64  // bytes
	Model     string // vendor and model, or a loop device's backing file
	Removable bool   // as the kernel says, or an SD card, or on USB
	ReadOnly  bool
	rdev      uint64
}

func (d *Device) String() string {
	s := fmt.Sprintf("%s: %s, %s", d.Path, d.Model, progress.Size(d.Size))
	if d.Removable {
		return s + ", removable"
	}
	return s + ", not removable"
}

// Errors a caller may tell apart (the CLI's --force overrides only
// ErrNotRemovable).
var (
	ErrNotRemovable = errors.New("not removable")
	ErrInUse        = errors.New("in use")
)

// Describe finds the whole disk at path in sysfs.
func Describe(path string) (*Device, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return nil, fmt.Errorf("%s is not a block device; name a card or stick such as /dev/sdb or /dev/mmcblk0 (lsblk lists them)", path)
	}
	sys, err := filepath.EvalSymlinks(fmt.Sprintf("/sys/dev/block/%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev)))
	if err != nil {
		return nil, fmt.Errorf("%s: the kernel does not describe it: %w", path, err)
	}
	if exists(filepath.Join(sys, "partition")) {
		return nil, fmt.Errorf("%s is a partition of /dev/%s; name the whole device, /dev/%s", path, filepath.Base(filepath.Dir(sys)), filepath.Base(filepath.Dir(sys)))
	}
	// The MMC driver calls no card removable, even in a card slot; an SD
	// card (not eMMC, the board's own storage) or a disk on USB is.
	removable := readSys(sys, "removable") == "1" || readSys(sys, "device/type") == "SD" || strings.Contains(sys, "/usb")
	d := &Device{Path: path, Sys: sys, Removable: removable, ReadOnly: readSys(sys, "ro") == "1", rdev: st.Rdev}
	sectors, err := strconv.ParseInt(readSys(sys, "size"), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%s: its size is unknown: %w", path, err)
	}
	d.Size = sectors * 512
	if d.Size == 0 {
		return nil, fmt.Errorf("%s has no medium (size 0); put a card in the reader", path)
	}
	d.Model = strings.Join(strings.Fields(readSys(sys, "device/vendor")+" "+readSys(sys, "device/model")+" "+readSys(sys, "device/name")), " ")
	if back := readSys(sys, "loop/backing_file"); back != "" {
		d.Model = "loop device of " + back
	}
	if d.Model == "" {
		d.Model = "unknown model"
	}
	return d, nil
}

// Check refuses a device that is read-only, mounted, used as swap or
// by a device mapper (through any of its partitions), or not removable.
func (d *Device) Check() error {
	if d.ReadOnly {
		return fmt.Errorf("%s is read-only (a card's lock switch?); unlock it", d.Path)
	}
	devs, err := d.family()
	if err != nil {
		return err
	}
	if err := mounted(d.Path, devs); err != nil {
		return err
	}
	if err := swapOn(d.Path, devs); err != nil {
		return err
	}
	if !d.Removable {
		return fmt.Errorf("%s is %w: it may be a disk of this machine; check with lsblk, and give --force if it is the card or stick", d.Path, ErrNotRemovable)
	}
	return nil
}

// family is the device numbers ("8:16") of the device, its partitions
// and, recursively, what holds them (device-mapper, RAID); a holder in
// use is named as such.
func (d *Device) family() (map[string]string, error) {
	devs := map[string]string{}
	var add func(sys string, depth int) error
	add = func(sys string, depth int) error {
		if depth > 8 {
			return nil
		}
		name := filepath.Base(sys)
		devs[readSys(sys, "dev")] = "/dev/" + name
		holders, _ := os.ReadDir(filepath.Join(sys, "holders"))
		for _, h := range holders {
			hs, err := filepath.EvalSymlinks(filepath.Join(sys, "holders", h.Name()))
			if err != nil {
				return err
			}
			if err := add(hs, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := add(d.Sys, 0); err != nil {
		return nil, err
	}
	entries, _ := os.ReadDir(d.Sys)
	for _, e := range entries {
		p := filepath.Join(d.Sys, e.Name())
		if exists(filepath.Join(p, "partition")) {
			if err := add(p, 1); err != nil {
				return nil, err
			}
		}
	}
	delete(devs, "")
	return devs, nil
}

// mounted says, in one sentence, where a device of devs is mounted: by
// the device numbers of the mount, or of its source (btrfs and ZFS show
// numbers of their own). The running system is named first.
func mounted(path string, devs map[string]string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	defer f.Close()
	var first error
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// id parent major:minor root mountpoint options... - fstype source superoptions
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		dev, ok := devs[fields[2]]
		if sep := slices.Index(fields, "-"); !ok && sep > 0 && sep+2 < len(fields) && strings.HasPrefix(fields[sep+2], "/dev/") {
			var st unix.Stat_t
			if unix.Stat(unescape(fields[sep+2]), &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFBLK {
				dev, ok = devs[fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))]
			}
		}
		if !ok {
			continue
		}
		at := unescape(fields[4])
		if at == "/" || at == "/usr" || at == "/boot" || at == "/boot/efi" {
			return fmt.Errorf("%s holds the running system (%s is mounted from %s): %w; name another device", path, at, dev, ErrInUse)
		}
		if first == nil {
			first = fmt.Errorf("%s is mounted at %s (%s): %w; unmount it first (umount %s)", path, at, dev, ErrInUse, dev)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return first
}

// swapOn says whether a device of devs is used as swap.
func swapOn(path string, devs map[string]string) error {
	data, err := os.ReadFile("/proc/swaps")
	if err != nil {
		return nil // no swap support
	}
	for _, line := range strings.Split(string(data), "\n")[1:] {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		var st unix.Stat_t
		if unix.Stat(unescape(fields[0]), &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFBLK {
			continue
		}
		if dev, ok := devs[fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))]; ok {
			return fmt.Errorf("%s is used as swap (%s): %w; swapoff %s first", path, dev, ErrInUse, dev)
		}
	}
	return nil
}

// unescape undoes the octal escapes of /proc's mount and swap tables.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func readSys(dir, name string) string {
	b, _ := os.ReadFile(filepath.Join(dir, name))
	return strings.TrimSpace(string(b))
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
