package build

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"

	"github.com/cairn-os/cairn/boot"
	"github.com/cairn-os/cairn/image/fstree"
	"github.com/u-root/u-root/pkg/cpio"
)

func (b *builder) buildInfo() boot.BuildInfo {
	p := b.o.Board
	mods := slices.Concat(p.Modules, b.o.Config.Modules, b.featureModules())
	info := boot.BuildInfo{Board: p.Name, Family: p.Family, Arch: b.arch, Version: b.o.Version, Kernel: b.kernel.Version,
		Epoch: b.o.Epoch.Unix(), Modules: mods, Watchdog: p.Watchdog, MinData: int64(p.Layout.Data) << 20}
	if b.isCluster() {
		info.Role, info.Cluster = b.o.Config.Cluster.Role, b.o.Config.Cluster.ClusterName()
	}
	return info
}

// addInfo puts the build's BuildInfo at boot.InfoPath.
func (b *builder) addInfo(t *fstree.Tree) error {
	info, _ := json.MarshalIndent(b.buildInfo(), "", "  ")
	return t.AddData(boot.InfoPath, 0o644, append(info, '\n'))
}

// featureModules are the modules what the image runs needs, loaded at
// boot: a cluster's, Wi-Fi's ciphers.
func (b *builder) featureModules() []string {
	var mods []string
	if b.isCluster() {
		mods = append(mods, clusterModules...)
	}
	if b.hasWiFi() {
		mods = append(mods, wifiModules...)
	}
	return mods
}

// modules returns the module files for the initramfs and for the root.
func (b *builder) modules() (initrd, root []string, err error) {
	p := b.o.Board
	if initrd, err = b.kernel.Closure(p.InitramfsModules); err != nil {
		return nil, nil, fmt.Errorf("board %s initramfsModules: %w", p.Name, err)
	}
	names := slices.Concat(p.InitramfsModules, p.Modules, b.o.Config.Modules, b.featureModules())
	for _, t := range p.ModuleTrees {
		names = append(names, b.kernel.Under(t)...)
	}
	if root, err = b.kernel.Closure(names); err != nil {
		return nil, nil, fmt.Errorf("modules: %w (check the config's modules: list)", err)
	}
	return initrd, root, nil
}

// addModules puts module files and their modules.dep under lib/modules.
func (b *builder) addModules(t *fstree.Tree, files []string) error {
	base := "lib/modules/" + b.kernel.Version
	for _, rel := range files {
		if err := t.AddFile(path.Join(base, rel), 0o644, filepath.Join(b.kernel.Dir, rel)); err != nil {
			return err
		}
	}
	dep, err := b.kernel.DepFile(files)
	if err != nil {
		return err
	}
	if err := t.AddData(base+"/modules.dep", 0o644, dep); err != nil {
		return err
	}
	builtin, err := os.ReadFile(filepath.Join(b.kernel.Dir, "modules.builtin"))
	if err != nil {
		return fmt.Errorf("kernel package lacks modules.builtin: %w", err)
	}
	return t.AddData(base+"/modules.builtin", 0o644, builtin)
}

func skeleton(t *fstree.Tree) error {
	for _, d := range []string{"dev", "proc", "sys", "run", "var", "etc", "mnt/boot", "newroot"} {
		if err := t.Mkdir(d, 0o755); err != nil {
			return err
		}
	}
	return t.Mkdir("tmp", fs.ModeSticky|0o777)
}

// rootTree is the read-only root filesystem of a slot.
func (b *builder) rootTree(mods []string) (*fstree.Tree, error) {
	t := fstree.New()
	if err := skeleton(t); err != nil {
		return nil, err
	}
	if err := t.AddFile("sbin/init", 0o755, b.binary("init")); err != nil {
		return nil, err
	}
	if err := t.AddData(boot.ConfigPath, 0o600, b.o.ConfigRaw); err != nil {
		return nil, err
	}
	for name, data := range b.o.ClusterFiles {
		if err := t.AddData(path.Join(boot.ClusterDir, name), 0o600, data); err != nil {
			return nil, err
		}
	}
	for name, data := range b.o.FleetFiles {
		if err := t.AddData(path.Join(boot.FleetDir, name), 0o600, data); err != nil {
			return nil, err
		}
	}
	if err := b.addInfo(t); err != nil {
		return nil, err
	}
	osRelease := fmt.Sprintf("NAME=Cairn\nID=cairn\nVERSION_ID=%s\nPRETTY_NAME=\"Cairn %s (%s)\"\n", b.o.Version, b.o.Version, b.o.Board.Name)
	if err := t.AddData("etc/os-release", 0o644, []byte(osRelease)); err != nil {
		return nil, err
	}
	if err := b.addModules(t, mods); err != nil {
		return nil, err
	}
	want := userlandFiles
	if b.isCluster() {
		want = append(slices.Clone(want), expandFiles(b.userDirs, clusterFiles)...)
		if err := b.addClusterTree(t); err != nil {
			return nil, err
		}
	}
	if b.hasWiFi() {
		want = append(slices.Clone(want), b.wifiWant()...)
		for link, target := range regdbLinks {
			if err := t.Symlink(link, target); err != nil {
				return nil, err
			}
		}
	}
	files, err := libClosure(b.userDirs, b.arch, want)
	if err != nil {
		return nil, fmt.Errorf("userland: %w", err)
	}
	for _, f := range files {
		full := filepath.Join(f.root, f.rel)
		st, err := os.Lstat(full)
		if err != nil {
			return nil, err
		}
		if st.Mode()&fs.ModeSymlink != 0 {
			target, _ := os.Readlink(full)
			err = t.Symlink(f.rel, target)
		} else {
			err = t.AddFile(f.rel, st.Mode().Perm(), full)
		}
		if err != nil {
			return nil, err
		}
	}
	// Firmware blobs the kernel loads at run time (Wi-Fi and the like).
	for _, dir := range b.fwDirs {
		fwRoot := filepath.Join(dir, "lib/firmware")
		err := filepath.WalkDir(fwRoot, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			rel, _ := filepath.Rel(dir, p)
			if d.Type()&fs.ModeSymlink != 0 {
				target, _ := os.Readlink(p)
				return t.Symlink(rel, target)
			}
			return t.AddFile(rel, 0o644, p)
		})
		if err != nil {
			return nil, err
		}
	}
	return t, nil
}

// initramfs is the gzip-compressed cpio archive with init and the modules
// that reach the root.
func (b *builder) initramfs(mods []string) ([]byte, error) {
	t := fstree.New()
	if err := skeleton(t); err != nil {
		return nil, err
	}
	if err := t.AddFile("init", 0o755, b.binary("init")); err != nil {
		return nil, err
	}
	if err := b.addInfo(t); err != nil {
		return nil, err
	}
	if err := t.CharDev("dev/console", 0o600, 5, 1); err != nil {
		return nil, err
	}
	if err := t.CharDev("dev/null", 0o666, 1, 3); err != nil {
		return nil, err
	}
	if err := b.addModules(t, mods); err != nil {
		return nil, err
	}
	return cpioGzip(t)
}

func cpioGzip(t *fstree.Tree) ([]byte, error) {
	var buf bytes.Buffer
	gz, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	w := cpio.Newc.Writer(gz)
	for i, e := range t.Walk() {
		if e.Path == "" {
			continue
		}
		var r cpio.Record
		switch {
		case e.Mode.IsDir():
			r = cpio.Directory(e.Path, uint64(e.Mode.Perm()))
		case e.Mode&fs.ModeSymlink != 0:
			r = cpio.Symlink(e.Path, e.Target)
		case e.Mode&fs.ModeCharDevice != 0:
			r = cpio.CharDev(e.Path, uint64(e.Mode.Perm()), uint64(e.Major), uint64(e.Minor))
		default:
			rc, err := e.Open()
			if err != nil {
				return nil, err
			}
			var data bytes.Buffer
			_, err = data.ReadFrom(rc)
			rc.Close()
			if err != nil {
				return nil, err
			}
			r = cpio.StaticFile(e.Path, data.String(), uint64(e.Mode.Perm()))
		}
		r.Ino = uint64(i + 1)
		if err := w.WriteRecord(cpio.MakeReproducible(r)); err != nil {
			return nil, err
		}
	}
	if err := cpio.WriteTrailer(w); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// kernelImage is the path of the kernel in the unpacked package.
func (b *builder) kernelImage() (string, error) {
	m, _ := filepath.Glob(filepath.Join(b.kdir, "boot/vmlinu*-"+b.kernel.Version))
	if len(m) == 0 {
		return "", fmt.Errorf("kernel package has no boot/vmlinuz-%s", b.kernel.Version)
	}
	return m[0], nil
}

// dtb is the path of a device tree in the unpacked kernel package.
func (b *builder) dtb(rel string) (string, error) {
	p := filepath.Join(b.kdir, "usr/lib/linux-image-"+b.kernel.Version, rel)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("board %s: device tree %s is not in kernel %s", b.o.Board.Name, rel, b.kernel.Version)
	}
	return p, nil
}
