package build

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"

	"github.com/cairn-os/cairn/boot"
	"github.com/cairn-os/cairn/boot/family"
	"github.com/cairn-os/cairn/image/fstree"
	"github.com/cairn-os/cairn/image/squashfs"
	"github.com/cairn-os/cairn/internal/progress"
)

const (
	mib         = 1 << 20
	sectorSize  = 512
	firstOffset = 1 * mib // partitions start 1 MiB in
)

// assemble makes the slot: the root squashfs (in a work folder that lives
// as long as the Artifacts), the initramfs, and the family's arrangement.
func (b *builder) assemble(ctx context.Context) (*Artifacts, error) {
	home, err := family.Of(b.o.Board.Family)
	if err != nil {
		return nil, err
	}
	initMods, rootMods, err := b.modules()
	if err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp(filepath.Dir(b.o.Output), ".cairn-build-*")
	if err != nil {
		return nil, fmt.Errorf("%w: %w (check that the folder of %s exists and is writable)", ErrOutput, err, b.o.Output)
	}
	a := &Artifacts{Kernel: b.kernel.Version, work: work}
	ok := false
	defer func() {
		if !ok {
			a.Close()
		}
	}()
	root, err := b.rootTree(rootMods)
	if err != nil {
		return nil, err
	}
	sqPath := filepath.Join(work, boot.RootFile)
	if _, err := b.squashfs(root, sqPath); err != nil {
		return nil, err
	}
	initrd, err := b.initramfs(initMods)
	if err != nil {
		return nil, err
	}
	if a.Parts, err = b.parts(initrd, sqPath); err != nil {
		return nil, err
	}
	if a.Slot, err = home.Slot(a.Parts); err != nil {
		return nil, err
	}
	a.Board, a.ID = b.o.Board, b.id
	ok = true
	return a, nil
}

// parts gathers what the family arranges: the kernel, the initramfs, the
// root, the board's firmware files and device trees.
func (b *builder) parts(initrd []byte, root string) (*family.Parts, error) {
	p := b.o.Board
	kernel, err := b.kernelImage()
	if err != nil {
		return nil, err
	}
	parts := &family.Parts{Kernel: kernel, Initrd: initrd, Root: root, Firmware: map[string]string{}, DTBs: map[string]string{},
		Console: p.Console, Args: p.Cmdline, Version: b.o.Version, Epoch: b.o.Epoch}
	for _, fw := range p.Firmware {
		for src, dst := range fw.Map {
			file := filepath.Join(b.fwDirs[fw.Package], src)
			if _, err := os.Stat(file); err != nil {
				return nil, fmt.Errorf("board %s: package %s lacks %s: %w", p.Name, fw.Package, src, err)
			}
			parts.Firmware[dst] = file
		}
	}
	for _, d := range p.DeviceTrees {
		file, err := b.dtb(d)
		if err != nil {
			return nil, err
		}
		parts.DTBs[path.Base(d)] = file
	}
	return parts, nil
}

func (b *builder) squashfs(t *fstree.Tree, out string) (int64, error) {
	f, err := os.Create(out)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrOutput, err)
	}
	defer f.Close()
	var bar *progress.Bar
	opt := squashfs.Options{Compression: b.o.Board.Squashfs, ModTime: b.o.Epoch, Workers: b.workers()}
	if b.o.Progress != nil {
		bar = progress.New(b.o.Progress, "root filesystem (squashfs "+b.o.Board.Squashfs+")", 0)
		opt.Progress = bar.Add
	}
	n, err := squashfs.Write(f, t, opt)
	if err != nil {
		return 0, err
	}
	if bar != nil {
		bar.Done()
	}
	return n, nil
}
