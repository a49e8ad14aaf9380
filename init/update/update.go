package update

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cairn-os/cairn/boot"
	"github.com/cairn-os/cairn/boot/bundle"
	"github.com/cairn-os/cairn/boot/family"
	"github.com/cairn-os/cairn/image/fat"
	"github.com/cairn-os/cairn/image/fstree"
	"github.com/cairn-os/cairn/init/disk"
	"github.com/cairn-os/cairn/internal/nodeapi"
	"golang.org/x/sys/unix"
)

// ErrRefused is wrapped when a bundle or a request is refused before
// anything was written: the caller's mistake, not the node's.
var ErrRefused = errors.New("refused")

// Node is the updater of the running node.
type Node struct {
	Info     boot.BuildInfo
	Booted   string // the running slot (cairn.slot=)
	DiskID   string // cairn.disk=
	Cluster  string // the cluster's name; "" for a node without one
	Hostname string
	Keys     []ed25519.PublicKey
	Trial    time.Duration // how long a trial slot has to become healthy,
	Since    time.Time     // counted from here (the start of init's stage 2)
	// Watchdog, when set, is told until when init may keep the hardware
	// watchdog fed: on a trial boot, a little past the trial's end, so
	// that a node that hangs on trial is reset into the committed slot;
	// the zero time for ever.
	Watchdog func(until time.Time)
	// Reboot restarts the node cleanly, passing arg, if not "", to the
	// kernel's restart (family.TrialReboot); it returns at once.
	Reboot func(arg string)
	Log    *slog.Logger

	mu sync.Mutex // held by whatever writes: an install, a rollback, the commit

	smu       sync.Mutex // the two fields below
	committed string     // the committed slot; "" until the gate has read it
	rebooting string     // the slot armed for the reboot under way
}

// bootMount is where the updater mounts the boot partition.
const bootMount = "/run/cairn/update/boot"

// ready says whether the node can take an update or a rollback now.
func (n *Node) ready() error {
	n.smu.Lock()
	defer n.smu.Unlock()
	switch {
	case n.rebooting != "":
		return fmt.Errorf("%w: the node is rebooting into slot %s", ErrRefused, n.rebooting)
	case n.committed == "":
		return fmt.Errorf("%w: the node has not read its boot partition yet; try again in a minute", ErrRefused)
	case n.committed != n.Booted:
		return fmt.Errorf("%w: this node runs slot %s on trial; wait until the trial ends (cairn status)", ErrRefused, n.Booted)
	}
	return nil
}

// begin starts an install or a rollback: it returns the family's chooser
// with n.mu held, or why the node takes neither now.
func (n *Node) begin() (family.Chooser, error) {
	chooser, err := family.ChooserOf(n.Info.Family)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	if err := n.ready(); err != nil {
		return nil, err
	}
	if !n.mu.TryLock() {
		return nil, fmt.Errorf("%w: another update or rollback is under way", ErrRefused)
	}
	return chooser, nil
}

// setRebooting reboots into slot: on trial, as the family's firmware
// needs to be asked for it, or the committed one.
func (n *Node) setRebooting(slot string, trial bool) {
	n.smu.Lock()
	n.rebooting = slot
	n.smu.Unlock()
	arg := ""
	if trial {
		arg = family.TrialReboot(n.Info.Family)
	}
	n.Reboot(arg)
}

// withBoot mounts the boot partition for fn, read-write only when fn
// writes (a read-write mount of FAT marks it dirty until the unmount).
// Callers hold n.mu: a second mount of the same FAT with other flags fails.
func (n *Node) withBoot(rw bool, fn func(d *disk.Disk, dir string) error) error {
	d, err := disk.Find(n.DiskID)
	if err != nil {
		return err
	}
	return withFAT(d.Part(boot.PartBoot), bootMount, "the boot partition", rw, func() error { return fn(d, bootMount) })
}

// forInstall runs fn, the install, with the boot partition mounted
// read-write at bootDir, except on a UEFI node: there the install edits
// the ESP's files on its raw partition (fat.Editor, docs/adr/0015), which
// must not be mounted, and bootDir is "" (the UEFI chooser arms through an
// EFI variable). Callers hold n.mu.
func (n *Node) forInstall(fn func(d *disk.Disk, bootDir string) error) error {
	if n.Info.Family != boot.UEFI {
		return n.withBoot(true, fn)
	}
	d, err := disk.Find(n.DiskID)
	if err != nil {
		return err
	}
	return fn(d, "")
}

// withFAT mounts the FAT file system on dev at dir for fn, read-only
// unless rw, and syncs and unmounts it after; what names it in errors.
func withFAT(dev, dir, what string, rw bool, fn func() error) (err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	// noatime: a read writes nothing (the Pi 3's slot states share a
	// directory; docs/adr/0012).
	flags := uintptr(unix.MS_NOEXEC | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOATIME)
	if !rw {
		flags |= unix.MS_RDONLY
	}
	if err := unix.Mount(dev, dir, "vfat", flags, "utf8"); err != nil {
		return fmt.Errorf("mount %s: %w", what, err)
	}
	defer func() {
		unix.Sync()
		if uerr := unix.Unmount(dir, 0); err == nil && uerr != nil {
			err = fmt.Errorf("unmount %s: %w", what, uerr)
		}
	}()
	return fn()
}

// Install installs the bundle r streams into the slot the node is not
// running, checks it, arms a trial of it and asks for a reboot. verified,
// if not nil, is called once the manifest's signature is good (the caller
// may then give the stream more time). build, if not 0, is the build the
// bundle must be (what a channel said it offers).
func (n *Node) Install(ctx context.Context, r io.Reader, allowDowngrade bool, verified func(), build int64) (*nodeapi.Result, error) {
	chooser, err := n.begin()
	if err != nil {
		return nil, err
	}
	defer n.mu.Unlock()
	br, err := bundle.NewReader(r, n.Keys)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	if verified != nil {
		verified()
	}
	m := br.Manifest
	if err := n.fits(m, allowDowngrade); err != nil {
		return nil, err
	}
	if build != 0 && m.Build != build {
		return nil, fmt.Errorf("%w: the channel offers build %d, but its bundle is build %d; publish it again", ErrRefused, build, m.Build)
	}
	target := boot.Other(n.Booted)
	var ws writeStats
	s, err := n.slot(br, m, &ws)
	if err != nil {
		return nil, err
	}
	holds := nodeapi.OS{Version: m.Version, Build: m.Build}
	res := outcome(target, holds, "installed", "")
	st, err := loadState(StateFile, n.Info)
	if err != nil {
		return nil, err
	}
	err = n.forInstall(func(d *disk.Disk, bootDir string) error {
		if err := chooser.Disarm(bootDir); err != nil {
			return fmt.Errorf("%w: %w", ErrRefused, err)
		}
		begin := func() error {
			// From here the target slot is being overwritten: say so first, so
			// that a power cut leaves a state that does not claim the old system.
			st.Slots[target] = nodeapi.OS{Version: "(being written)"}
			st.Pending = ""
			if err := st.save(StateFile); err != nil {
				return err
			}
			n.Log.Info("installing an update", "slot", target, "version", m.Version, "build", m.Build)
			return nil
		}
		if err := n.write(d, bootDir, br, s, target, &ws, begin); err != nil {
			return err
		}
		ws.log(n.Log, target)
		st.Slots[target] = holds
		st.Pending, st.Last = target, res
		if err := st.save(StateFile); err != nil {
			return err
		}
		return chooser.Arm(bootDir, target)
	})
	if err != nil {
		if !errors.Is(err, ErrRefused) {
			st.Pending, st.Last = "", outcome(target, holds, "failed", err.Error())
			st.save(StateFile)
		}
		n.Log.Error("update not installed", "err", err)
		return nil, err
	}
	n.Log.Info("update installed; rebooting into it on trial", "slot", target, "version", m.Version)
	n.setRebooting(target, true)
	return res, nil
}

// fits says whether a bundle is for this node.
func (n *Node) fits(m *bundle.Manifest, allowDowngrade bool) error {
	switch {
	case m.Board != n.Info.Board || m.Arch != n.Info.Arch:
		return fmt.Errorf("%w: the bundle is for board %s (%s), this node is %s (%s)", ErrRefused, m.Board, m.Arch, n.Info.Board, n.Info.Arch)
	case m.Family != n.Info.Family:
		return fmt.Errorf("%w: the bundle's slot boots through %s, but this node's card boots through %s (its board changed how it boots since it was flashed); flash a new image",
			ErrRefused, m.Family, n.Info.Family)
	case m.Cluster != n.Cluster:
		return fmt.Errorf("%w: the bundle is for cluster %q, this node is in %q", ErrRefused, m.Cluster, n.Cluster)
	case m.Build < n.Info.Epoch && !allowDowngrade:
		return fmt.Errorf("%w: the bundle's build %d (%s) is older than the running build %d (%s); pass --allow-downgrade to install it anyway",
			ErrRefused, m.Build, m.Version, n.Info.Epoch, n.Info.Version)
	}
	return nil
}

// slot is the slot the bundle holds, each file's content the bundle's
// next file, once the files are those the family installs, in its order.
func (n *Node) slot(br *bundle.Reader, m *bundle.Manifest, ws *writeStats) (*family.Slot, error) {
	home, err := family.Of(m.Family)
	if err != nil {
		return nil, err
	}
	s := &family.Slot{Family: m.Family, Files: fstree.New(), Console: m.Console, Args: m.Args, Version: m.Version, Epoch: time.Unix(m.Build, 0)}
	var names []string
	for _, f := range m.Files {
		names = append(names, f.Name)
		if err := s.Files.Put(f.Name, &fstree.Entry{Mode: 0o644, Size: f.Size, Content: next(br, f.Name, ws)}); err != nil {
			return nil, err
		}
	}
	for _, want := range []string{family.Kernel, family.Initrd, family.Root} {
		if !slices.Contains(names, want) {
			return nil, fmt.Errorf("%w: the bundle has no %s", ErrRefused, want)
		}
	}
	order, err := family.InstallOrder(home, s)
	if err != nil {
		return nil, err
	}
	if !slices.Equal(order, names) {
		return nil, fmt.Errorf("%w: the bundle holds %s, where a %s node installs %s; build it with this version of cairn",
			ErrRefused, strings.Join(names, ", "), m.Family, strings.Join(order, ", "))
	}
	return s, nil
}

// next opens the bundle's next file, which must be name; ws counts what
// is read from it and how long the reads waited.
func next(br *bundle.Reader, name string, ws *writeStats) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) {
		got, r, err := br.Next()
		if err == nil && got.Name != name {
			err = fmt.Errorf("the family installs %s where the bundle has %s", name, got.Name)
		}
		if err != nil {
			return nil, err
		}
		return newReadAhead(r, got.Size, ws), nil
	}
}

// writeStats are the figures of one install, which it logs (make bench
// reads them): the bytes of the slot's files, the time spent streaming them
// into the slot and of it the time the writes waited for the bundle (the
// network and the hashing, beside the writes), then the sync and the
// read-back.
type writeStats struct {
	bytes                           int64
	stream, waiting, sync, readBack time.Duration
	// Of the stream, the files written into the boot partition's file
	// system (not waiting for the bundle) and their bytes; of that time,
	// opening the file system and committing the files.
	bootFiles, bootOpen, bootCommit time.Duration
	bootFileBytes                   int64
}

func (ws *writeStats) log(log *slog.Logger, slot string) {
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru)
	written := ws.stream - ws.waiting + ws.sync
	log.Info("slot written", "slot", slot, "bytes", ws.bytes,
		"streamed", ws.stream.Round(time.Millisecond), "waitingForBundle", ws.waiting.Round(time.Millisecond),
		"sync", ws.sync.Round(time.Millisecond), "readBack", ws.readBack.Round(time.Millisecond),
		"bootFiles", ws.bootFiles.Round(time.Millisecond), "bootFileBytes", ws.bootFileBytes,
		"bootOpen", ws.bootOpen.Round(time.Millisecond), "bootCommit", ws.bootCommit.Round(time.Millisecond),
		"writeMiBps", fmt.Sprintf("%.1f", float64(ws.bytes)/(1<<20)/max(written.Seconds(), 1e-3)),
		"initPeakRSSMiB", ru.Maxrss>>10)
}

// write streams the bundle's files into slot target through the family's
// Install, checks that the stream matched its manifest to the end, and
// reads back what landed on the disk.
func (n *Node) write(d *disk.Disk, bootDir string, br *bundle.Reader, s *family.Slot, target string, ws *writeStats, begin func() error) error {
	m := br.Manifest
	home, err := family.Of(m.Family)
	if err != nil {
		return err
	}
	dev, err := openBlockDev(d.Dev, 0)
	if err != nil {
		return err
	}
	defer dev.Close()
	dd := &deviceDisk{disk: d, dev: dev, id: n.DiskID, bootDir: bootDir, ws: ws}
	defer dd.closeBoot()
	// Open first, so that a boot partition that cannot be edited fails the
	// install before the state says the slot is being written.
	open := time.Now()
	if err := dd.openBoot(); err != nil {
		return err
	}
	opened := time.Since(open)
	ws.bootFiles += opened
	ws.bootOpen = opened
	if err := begin(); err != nil {
		return err
	}
	start := time.Now().Add(-opened) // the write's time, without begin's
	if err := home.Install(dd, s, target); err != nil {
		return err
	}
	if f, _, err := br.Next(); err != io.EOF {
		if err == nil {
			err = fmt.Errorf("%w: it holds %s after the files it lists", bundle.ErrContent, f.Name)
		}
		return err
	}
	commit := time.Now()
	if err := dd.commitBoot(); err != nil {
		return err
	}
	ws.bootCommit = time.Since(commit)
	ws.bootFiles += ws.bootCommit
	if !m.Family.RootInSlotFile() {
		// The root went raw into the slot partition.
		_, at, _, err := dd.Partition(boot.SlotPart(target))
		if err != nil {
			return err
		}
		dd.record(family.Root, d.Dev, at)
	}
	ws.stream = time.Since(start)
	start = time.Now()
	if err := dev.Sync(); err != nil {
		return err
	}
	unix.Sync()
	ws.sync = time.Since(start)
	start = time.Now()
	defer func() { ws.readBack = time.Since(start) }()
	if !m.Family.RootInSlotFile() {
		if bootDir == "" { // the ESP's files were written on the raw partition
			return withFAT(d.Part(boot.PartBoot), bootMount, "the boot partition", false, func() error { return dd.readBack(m, "") })
		}
		return dd.readBack(m, "")
	}
	// A FAT slot is read back through the file system the firmware or
	// U-Boot will read, mounted afresh. A mount left from an earlier
	// read-back that could not be undone would be reused, with what it
	// read then: detach it first.
	for unix.Unmount(slotMount, unix.MNT_DETACH) == nil {
	}
	part := d.Part(boot.SlotPart(target))
	f, err := os.Open(part)
	if err != nil {
		return err
	}
	// Nor may the partition's own cache stand for what went to the disk
	// through the whole disk's.
	err = unix.IoctlSetInt(int(f.Fd()), unix.BLKFLSBUF, 0)
	f.Close()
	if err != nil {
		return fmt.Errorf("drop the cache of slot %s to read it back: %w", target, err)
	}
	return withFAT(part, slotMount, "slot "+target, false, func() error { return dd.readBack(m, slotMount) })
}

// slotMount is where the updater mounts a FAT slot it wrote.
const slotMount = "/run/cairn/update/slot"

// readBack hashes what was written, from the disk rather than the page
// cache (written and synced, its pages are dropped first), against the
// manifest: each file where it landed whole, or else in slotDir, the
// slot's file system, if not "".
func (dd *deviceDisk) readBack(m *bundle.Manifest, slotDir string) error {
	for _, f := range m.Files {
		w, ok := dd.written[f.Name]
		switch {
		case ok:
		case slotDir != "":
			w = place{path: filepath.Join(slotDir, filepath.FromSlash(f.Name))}
		default:
			continue
		}
		file, err := os.Open(w.path)
		if err != nil {
			return err
		}
		if fi, err := file.Stat(); err == nil && !ok && fi.Size() != f.Size {
			file.Close()
			return fmt.Errorf("read back %s from %s: %d bytes, want %d: the storage did not keep what was written", f.Name, w.path, fi.Size(), f.Size)
		}
		if err := unix.Fadvise(int(file.Fd()), w.off, f.Size, unix.FADV_DONTNEED); err != nil {
			file.Close()
			return fmt.Errorf("read back %s: %w", f.Name, err)
		}
		h := sha256.New()
		_, err = io.Copy(h, io.NewSectionReader(file, w.off, f.Size))
		file.Close()
		if err != nil {
			return fmt.Errorf("read back %s: %w", f.Name, err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != f.SHA256 {
			return fmt.Errorf("read back %s from %s: sha256 %s, want %s: the storage did not keep what was written", f.Name, w.path, got, f.SHA256)
		}
	}
	return nil
}

// deviceDisk is the running node's disk as the families see it.
type deviceDisk struct {
	disk    *disk.Disk
	dev     *blockDev
	id      string
	bootDir string
	written map[string]place // slot file -> where it landed whole
	ws      *writeStats
	// The boot partition opened for staging files, when bootDir is "".
	esp    *fat.Editor
	espDev *blockDev
}

type place struct {
	path string
	off  int64
}

func (dd *deviceDisk) record(name, path string, off int64) {
	if dd.written == nil {
		dd.written = map[string]place{}
	}
	dd.written[name] = place{path, off}
}

func (dd *deviceDisk) ID() string         { return dd.id }
func (dd *deviceDisk) Boot() family.Files { return bootFiles{dd} }
func (dd *deviceDisk) Partition(num int) (io.WriterAt, int64, int64, error) {
	part := filepath.Base(dd.disk.Part(num))
	var start, size int64
	for _, v := range []struct {
		file string
		to   *int64
	}{{"start", &start}, {"size", &size}} {
		data, err := os.ReadFile(filepath.Join("/sys/block", dd.disk.Name, part, v.file))
		if err != nil {
			return nil, 0, 0, err
		}
		if _, err := fmt.Sscan(string(data), v.to); err != nil {
			return nil, 0, 0, err
		}
	}
	return dd.dev, start * 512, size * 512, nil
}

// bootFiles writes files into the boot partition: edited on its raw
// partition if bootDir is "", else through its mount at bootDir. In place
// either way: they belong to the slot being installed, which nothing boots
// until it is armed.
type bootFiles struct{ dd *deviceDisk }

func (b bootFiles) Put(name string, e *fstree.Entry) error {
	if ws := b.dd.ws; ws != nil && e.Content != nil { // a file of the bundle
		start, waited := time.Now(), ws.waiting
		defer func() { ws.bootFiles += time.Since(start) - (ws.waiting - waited); ws.bootFileBytes += e.Size }()
	}
	err := b.dd.stage(name, e)
	if errors.Is(err, fat.ErrNoFile) && b.dd.bootDir == "" {
		// Not on the ESP (a card whose slot was never installed): the
		// editor replaces files, Linux's vfat makes them.
		if err = b.dd.commitBoot(); err == nil {
			err = withFAT(b.dd.disk.Part(boot.PartBoot), bootMount, "the boot partition", true, func() error {
				return writeFile(filepath.Join(bootMount, filepath.FromSlash(name)), e)
			})
		}
	}
	if err != nil {
		return fmt.Errorf("write %s on the boot partition: %w", name, err)
	}
	if e.Content != nil {
		b.dd.record(e.Path, filepath.Join(bootMount, filepath.FromSlash(name)), 0)
	}
	return nil
}

// stage writes the file name of the boot partition: if it is not mounted,
// its new bytes are staged on the raw partition (fat.Editor), for
// commitBoot to switch the files to; else through the mount.
func (dd *deviceDisk) stage(name string, e *fstree.Entry) error {
	if dd.bootDir != "" {
		return writeFile(filepath.Join(dd.bootDir, filepath.FromSlash(name)), e)
	}
	if err := dd.openBoot(); err != nil {
		return err
	}
	return dd.esp.Stage(name, e.Size, time.Now(), func(w io.Writer) error {
		r, err := e.Open()
		if err != nil {
			return err
		}
		defer r.Close()
		return family.WriteFull(w, r, 4<<20)
	})
}

// openBoot opens the boot partition for staging, if it is not mounted and
// not open already.
func (dd *deviceDisk) openBoot() error {
	if dd.bootDir != "" || dd.esp != nil {
		return nil
	}
	// O_EXCL: the partition is not mounted, and is not while it is open.
	dev := dd.disk.Part(boot.PartBoot)
	part, err := openBlockDev(dev, unix.O_EXCL)
	if errors.Is(err, unix.EBUSY) {
		return fmt.Errorf("the boot partition %s is in use (mounted?): unmount it, then update again", dev)
	}
	if err != nil {
		return err
	}
	size, err := part.Seek(0, io.SeekEnd)
	if err == nil {
		dd.esp, err = fat.Edit(part, size)
	}
	if err != nil {
		part.Close()
		return fmt.Errorf("the boot partition %s: %w", dev, err)
	}
	dd.espDev = part
	return nil
}

// commitBoot switches the boot partition's staged files to their new
// bytes, if any, and closes the partition.
func (dd *deviceDisk) commitBoot() error {
	if dd.esp == nil {
		return nil
	}
	if err := errors.Join(dd.esp.Commit(), dd.closeBoot()); err != nil {
		return fmt.Errorf("commit the new boot files on the boot partition: %w; the new slot stays unarmed, so update again", err)
	}
	return nil
}

// closeBoot closes the boot partition opened for staging, what was staged
// and not committed left unreferenced.
func (dd *deviceDisk) closeBoot() error {
	if dd.espDev == nil {
		return nil
	}
	err := dd.espDev.Close()
	dd.esp, dd.espDev = nil, nil
	return err
}

// writeFile writes e to the file dst on a mounted boot partition.
func writeFile(dst string, e *fstree.Entry) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	r, err := e.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	err = family.WriteFull(f, r, 1<<20)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
