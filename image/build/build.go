package build

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/cairn-os/cairn/boards"
	"github.com/cairn-os/cairn/boot"
	"github.com/cairn-os/cairn/boot/bundle"
	"github.com/cairn-os/cairn/boot/family"
	"github.com/cairn-os/cairn/configs"
	"github.com/cairn-os/cairn/image/apt"
	imgbundle "github.com/cairn-os/cairn/image/bundle"
	"github.com/cairn-os/cairn/image/disk"
	"github.com/cairn-os/cairn/image/kmod"
	"github.com/cairn-os/cairn/internal/fleet"
)

// ErrOutput is wrapped when the output file cannot be written.
var ErrOutput = disk.ErrOutput

// ErrTooSmall is wrapped when content does not fit its partition.
var ErrTooSmall = family.ErrTooSmall

// Options are the inputs of one build.
type Options struct {
	Board     *boards.Profile
	Config    *configs.Config
	ConfigRaw []byte // the config file as written, baked into the image
	// ClusterFiles are baked into boot.ClusterDir (0600), by file name.
	ClusterFiles map[string][]byte
	// FleetFiles are baked into boot.FleetDir (0600): the node API's
	// credentials and the key that signs bundles.
	FleetFiles map[string][]byte
	// Bundle is the update bundle to write beside the image; "" for none.
	Bundle string
	// Images are container image archives (checked) baked into the root.
	Images []string
	// Manifests are Kubernetes manifests (checked) baked into a server's root.
	Manifests []string
	// Upstream is a folder of upstream programs (kube-apiserver, kubelet,
	// containerd, etcd, ...) baked into boot.UpstreamDir, where cairnd runs
	// them instead of its built-in components: for comparisons.
	Upstream string
	Output   string
	BinDir   string // holds linux-ARCH/init, and linux-ARCH/cairnd for a cluster
	Cache    string
	Offline  bool
	Debs     string // folder of .debs instead of repositories
	HostRoot string // where to read the host's apt sources; "/" normally
	Epoch    time.Time
	Version  string
	Log      *slog.Logger
	Progress io.Writer // progress bars and lines; nil for none

	configFile string   // where Config came from: relative paths start there
	scratch    string   // Plan's folder for pulled images
	secrets    *secrets // the cluster's, for the kubeconfig after the build
	fleet      *fleet.Fleet
}

// Artifacts are what a build makes: the slot and the parts of a new
// image's boot partition, ready for an output (disk.Write). Close removes
// the files they point at.
type Artifacts struct {
	disk.Input
	Kernel string // the kernel's version
	work   string
}

// Close removes the build's work folder.
func (a *Artifacts) Close() error { return os.RemoveAll(a.work) }

// Build resolves the packages and makes the slot.
func Build(ctx context.Context, o Options) (*Artifacts, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Cache == "" {
		o.Cache = apt.DefaultCache()
	}
	b := &builder{o: o, arch: o.Board.Arch}
	b.id = b.identity()
	if err := b.checkBinaries(); err != nil {
		return nil, err
	}
	if err := b.packages(ctx); err != nil {
		return nil, err
	}
	return b.assemble(ctx)
}

// Image builds and writes a disk image to o.Output: what cairn build does.
func Image(ctx context.Context, o Options) (*Result, error) {
	a, err := Build(ctx, o)
	if err != nil {
		return nil, err
	}
	defer a.Close()
	res, err := disk.Write(&a.Input, o.Output, o.Progress)
	if err != nil {
		return nil, err
	}
	if o.Bundle != "" {
		if err := a.WriteBundle(o); err != nil {
			return nil, err
		}
	}
	return &Result{Result: *res, Kernel: a.Kernel}, nil
}

// WriteBundle writes the update bundle of the build's slot to o.Bundle,
// signed with the fleet's key.
func (a *Artifacts) WriteBundle(o Options) error {
	m := &bundle.Manifest{Board: o.Board.Name, Arch: o.Board.Arch, Version: o.Version, Build: o.Epoch.Unix()}
	if o.Config.Cluster != nil {
		m.Cluster = o.Config.Cluster.ClusterName()
	}
	return imgbundle.Write(a.Slot, m, o.fleet.SignKey, o.Bundle, o.Progress)
}

// Result describes an image written.
type Result struct {
	disk.Result
	Kernel string // the kernel's version
}

type builder struct {
	o        Options
	arch     string
	id       [32]byte // digest of the inputs: GUIDs and volume ids derive from it
	sup      *supply
	kdir     string // unpacked kernel package
	kernel   *kmod.Tree
	fwDirs   map[string]string // firmware package -> unpacked folder
	userDirs []string          // unpacked userland closure
}

func (b *builder) binary(name string) string {
	return filepath.Join(b.o.BinDir, "linux-"+b.arch, name)
}

// checkBinaries finds the device binaries the image needs: init always,
// and cairnd, the pause program and the runc shim for a cluster node only.
func (b *builder) checkBinaries() error {
	names, target := []string{"init"}, "device-"+b.arch
	if b.isCluster() {
		names, target = append(names, "cairnd", "pause", shimName), "cluster-"+b.arch
	}
	for _, n := range names {
		if _, err := os.Stat(b.binary(n)); err != nil {
			return fmt.Errorf("%s is missing: build the device binaries first (make %s)", b.binary(n), target)
		}
	}
	return nil
}

// identity digests what determines the image, for derived identifiers.
func (b *builder) identity() [32]byte {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%d\x00", b.o.Board.Name, b.o.Epoch.Unix())
	h.Write(b.o.ConfigRaw)
	for _, name := range slices.Sorted(maps.Keys(b.o.ClusterFiles)) {
		fmt.Fprintf(h, "\x00%s\x00", name)
		h.Write(b.o.ClusterFiles[name])
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

func (b *builder) packages(ctx context.Context) error {
	p := b.o.Board
	client := &apt.Client{Arch: b.arch, Cache: b.o.Cache, Offline: b.o.Offline, Log: b.o.Log, Out: b.o.Progress}
	var ix *apt.Index
	var err error
	if b.o.Debs != "" {
		ix, err = apt.LocalIndex(b.o.Debs, b.arch)
	} else {
		client.Sources, err = b.sources()
		if err != nil {
			return err
		}
		b.o.Log.Info("reading package indexes", "sources", len(client.Sources), "arch", b.arch)
		ix, err = client.Index(ctx)
	}
	if err != nil {
		return err
	}
	b.sup = &supply{client: client, index: ix}
	kp, kdir, err := b.sup.kernel(ctx, p.Kernel.Package, p.NeedsRepo)
	if err != nil {
		return fmt.Errorf("board %s: %w", p.Name, err)
	}
	b.kdir = kdir
	if b.kernel, err = kmod.Open(kdir); err != nil {
		return fmt.Errorf("kernel package %s: %w", kp, err)
	}
	b.o.Log.Info("kernel", "package", kp.String(), "version", b.kernel.Version)
	b.fwDirs = map[string]string{}
	for _, fw := range p.Firmware {
		fp, err := b.sup.lookup(fw.Package, "the Raspberry Pi firmware is in Debian's non-free-firmware component")
		if err != nil {
			return err
		}
		if b.fwDirs[fw.Package], err = b.sup.unpack(ctx, fp); err != nil {
			return err
		}
	}
	pkgs := userlandPackages
	if b.isCluster() {
		pkgs = append(slices.Clone(pkgs), clusterPackages...)
	}
	if b.hasWiFi() {
		pkgs = append(slices.Clone(pkgs), wifiPackages...)
	}
	if w := p.WiFi; w != nil {
		fp, err := b.sup.lookup(w.Package, "the Wi-Fi firmware is in Debian's non-free-firmware component")
		if err != nil {
			return err
		}
		dir, err := b.sup.unpack(ctx, fp)
		if err != nil {
			return err
		}
		b.userDirs = append(b.userDirs, dir)
	}
	closure, err := ix.Closure(pkgs)
	if err != nil {
		return fmt.Errorf("userland: %w", err)
	}
	for _, up := range closure {
		dir, err := b.sup.unpack(ctx, up)
		if err != nil {
			return err
		}
		b.userDirs = append(b.userDirs, dir)
	}
	return nil
}

// sources are the config's repositories, else the host's apt sources, with
// the components the board needs added.
func (b *builder) sources() ([]apt.Source, error) {
	var srcs []apt.Source
	if repos := b.o.Config.Repositories; len(repos) > 0 {
		for _, r := range repos {
			comps := r.Components
			if len(comps) == 0 {
				comps = []string{"main"}
			}
			key := r.Keyring
			if key == "" {
				key = apt.DefaultKeyring
			}
			for _, u := range r.URIs {
				for _, s := range r.Suites {
					srcs = append(srcs, apt.Source{URI: strings.TrimRight(u, "/"), Suite: s, Components: comps, Keyring: key})
				}
			}
		}
	} else {
		root := b.o.HostRoot
		if root == "" {
			root = "/"
		}
		var err error
		if srcs, err = apt.HostSources(root); err != nil {
			return nil, err
		}
	}
	var extra []string
	if len(b.o.Board.Firmware) > 0 && b.o.Board.Family != boot.UEFI {
		extra = append(extra, "non-free-firmware")
	}
	return apt.WithComponents(srcs, extra), nil
}

// userlandPackages are the C tools init shells out to.
var userlandPackages = []string{"e2fsprogs"}

// userlandFiles are what the root takes from them (plus their libraries).
var userlandFiles = []string{"sbin/mke2fs", "sbin/e2fsck", "sbin/resize2fs", "etc/mke2fs.conf"}

func (b *builder) workers() int { return runtime.GOMAXPROCS(0) }
