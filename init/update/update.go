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
	"sync"
	"time"

	"github.com/cairn-os/cairn/boot"
	"github.com/cairn-os/cairn/boot/bundle"
	"github.com/cairn-os/cairn/boot/family"
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
	Trial    time.Duration // how long a trial slot has to become healthy
	// Reboot restarts the node cleanly; it returns at once.
	Reboot func()
	Log    *slog.Logger

	mu sync.Mutex // one operation at a time
}

// Places on the device.
const (
	bootMount = "/run/cairn/update/boot"
)

// withBoot mounts the boot partition for fn, read-write only when fn
// writes (a read-write mount of FAT marks it dirty until the unmount).
func (n *Node) withBoot(rw bool, fn func(d *disk.Disk, dir string) error) error {
	d, err := disk.Find(n.DiskID)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(bootMount, 0o700); err != nil {
		return err
	}
	flags := uintptr(unix.MS_NOEXEC | unix.MS_NOSUID | unix.MS_NODEV)
	if !rw {
		flags |= unix.MS_RDONLY
	}
	if err := unix.Mount(d.Part(boot.PartBoot), bootMount, "vfat", flags, "utf8"); err != nil {
		return fmt.Errorf("mount the boot partition: %w", err)
	}
	err = fn(d, bootMount)
	unix.Sync()
	if uerr := unix.Unmount(bootMount, 0); err == nil && uerr != nil {
		err = fmt.Errorf("unmount the boot partition: %w", uerr)
	}
	return err
}

// Install installs the bundle r streams into the slot the node is not
// running, checks it, arms a trial of it and asks for a reboot.
func (n *Node) Install(ctx context.Context, r io.Reader, allowDowngrade bool) (*nodeapi.Result, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	chooser, err := family.ChooserOf(n.Info.Family)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	br, err := bundle.NewReader(r, n.Keys)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	m := br.Manifest
	if err := n.fits(m, allowDowngrade); err != nil {
		return nil, err
	}
	target := boot.Other(n.Booted)
	res := &nodeapi.Result{Slot: target, Version: m.Version, Build: m.Build}
	err = n.withBoot(true, func(d *disk.Disk, bootDir string) error {
		committed, err := chooser.Committed(bootDir)
		if err != nil {
			return err
		}
		if committed == target {
			return fmt.Errorf("%w: slot %s is committed and this node runs slot %s on trial; wait until the trial ends (cairn status)", ErrRefused, target, n.Booted)
		}
		st, err := loadState(StateFile, n.Info)
		if err != nil {
			return err
		}
		// From here the target slot is being overwritten: say so first, so
		// that a power cut leaves a state that does not claim the old system.
		st.Slots[target] = nodeapi.OS{Version: "(being written)"}
		st.Pending = ""
		if err := st.save(StateFile); err != nil {
			return err
		}
		n.Log.Info("installing an update", "slot", target, "version", m.Version, "build", m.Build)
		if err := n.write(d, bootDir, br, target); err != nil {
			st.Last = n.result(res, "failed", err.Error())
			st.save(StateFile)
			return err
		}
		if err := chooser.Arm(bootDir, target); err != nil {
			return err
		}
		st.Slots[target] = nodeapi.OS{Version: m.Version, Build: m.Build}
		st.Pending = target
		st.Last = n.result(res, "installed", "")
		return st.save(StateFile)
	})
	if err != nil {
		n.Log.Error("update not installed", "err", err)
		return nil, err
	}
	n.Log.Info("update installed; rebooting into it on trial", "slot", target, "version", m.Version)
	n.Reboot()
	return res, nil
}

func (n *Node) result(r *nodeapi.Result, state, reason string) *nodeapi.Result {
	c := *r
	c.Time, c.State, c.Reason = time.Now().UTC(), state, reason
	return &c
}

// fits says whether a bundle is for this node.
func (n *Node) fits(m *bundle.Manifest, allowDowngrade bool) error {
	switch {
	case m.Board != n.Info.Board || m.Arch != n.Info.Arch || m.Family != n.Info.Family:
		return fmt.Errorf("%w: the bundle is for board %s (%s), this node is %s (%s)", ErrRefused, m.Board, m.Arch, n.Info.Board, n.Info.Arch)
	case m.Cluster != n.Cluster:
		return fmt.Errorf("%w: the bundle is for cluster %q, this node is in %q", ErrRefused, m.Cluster, n.Cluster)
	case m.Build < n.Info.Epoch && !allowDowngrade:
		return fmt.Errorf("%w: the bundle's build %d (%s) is older than the running build %d (%s); pass --allow-downgrade to install it anyway",
			ErrRefused, m.Build, m.Version, n.Info.Epoch, n.Info.Version)
	}
	return nil
}

// write streams the bundle's files into slot target through the family's
// Install, checks that the stream matched its manifest to the end, and
// reads back what landed on the disk.
func (n *Node) write(d *disk.Disk, bootDir string, br *bundle.Reader, target string) error {
	m := br.Manifest
	home, err := family.Of(m.Family)
	if err != nil {
		return err
	}
	s := &family.Slot{Family: m.Family, Files: fstree.New(), Console: m.Console, Args: m.Args, Version: m.Version, Epoch: time.Unix(m.Build, 0)}
	for _, f := range m.Files {
		name := f.Name
		err := s.Files.Put(name, &fstree.Entry{Mode: 0o644, Size: f.Size, Content: func() (io.ReadCloser, error) {
			got, r, err := br.Next()
			if err == nil && got.Name != name {
				err = fmt.Errorf("the family installs %s where the bundle has %s: the bundle was made by another version of cairn", name, got.Name)
			}
			return io.NopCloser(r), err
		}})
		if err != nil {
			return err
		}
	}
	dev, err := os.OpenFile(d.Dev, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer dev.Close()
	dd := &deviceDisk{disk: d, dev: dev, id: n.DiskID, bootDir: bootDir}
	if err := home.Install(dd, s, target); err != nil {
		return err
	}
	if _, _, err := br.Next(); err != io.EOF {
		return fmt.Errorf("after the last file: %w", err)
	}
	if !m.Family.RootInSlotFile() {
		// The root went raw into the slot partition.
		_, start, _, err := dd.Partition(boot.SlotPart(target))
		if err != nil {
			return err
		}
		dd.record(family.Root, d.Dev, start)
	}
	if err := dev.Sync(); err != nil {
		return err
	}
	unix.Sync()
	return dd.readBack(m)
}

// readBack hashes what was written, from the disk rather than the page
// cache, against the manifest.
func (dd *deviceDisk) readBack(m *bundle.Manifest) error {
	unix.IoctlSetInt(int(dd.dev.Fd()), unix.BLKFLSBUF, 0)
	os.WriteFile("/proc/sys/vm/drop_caches", []byte("1"), 0)
	for _, f := range m.Files {
		w, ok := dd.written[f.Name]
		if !ok {
			continue // inside a file system the family made; its own checks hold
		}
		file, err := os.Open(w.path)
		if err != nil {
			return err
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
	dev     *os.File
	id      string
	bootDir string
	written map[string]place // slot file -> where it landed whole
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

// bootFiles writes files into the mounted boot partition, in place: they
// belong to the slot being installed, which nothing boots until it is
// armed, and the partition need not hold two copies of a kernel.
type bootFiles struct{ dd *deviceDisk }

func (b bootFiles) Put(name string, e *fstree.Entry) error {
	dst := filepath.Join(b.dd.bootDir, filepath.FromSlash(name))
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
	_, err = io.CopyBuffer(f, r, make([]byte, 1<<20))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s on the boot partition: %w", name, err)
	}
	if e.Content != nil {
		b.dd.record(e.Path, dst, 0)
	}
	return nil
}
