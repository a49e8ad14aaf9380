package boards

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/cairn-os/cairn/boot"
	"gopkg.in/yaml.v3"
)

//go:embed *.yaml
var profiles embed.FS

// ErrUnknown is wrapped when a board name has no profile.
var ErrUnknown = errors.New("unknown board")

// Profile describes one board.
type Profile struct {
	Name        string      `yaml:"name"`
	Description string      `yaml:"description"`
	Arch        string      `yaml:"arch"` // Debian architecture: amd64, arm64
	Family      boot.Family `yaml:"family"`
	Kernel      Kernel      `yaml:"kernel"`
	Firmware    []Files     `yaml:"firmware"`
	DeviceTrees []string    `yaml:"deviceTrees"` // relative to the kernel's dtb folder
	Console     []string    `yaml:"console"`     // console= arguments, the last is the primary
	Cmdline     []string    `yaml:"cmdline"`     // extra kernel arguments
	// InitramfsModules reach the root: storage, filesystems.
	InitramfsModules []string `yaml:"initramfsModules"`
	// Modules are loaded by stage 2 (network, watchdog, ...).
	Modules []string `yaml:"modules"`
	// ModuleTrees are kernel/ subtrees copied whole into the root so that
	// hardware found at run time has its driver.
	ModuleTrees []string `yaml:"moduleTrees"`
	// WiFi is the board's radio, when it has one: images for it carry
	// wpa_supplicant and the radio's firmware whether or not the config
	// names a network, so that a card's cairn.yaml can add one.
	WiFi *WiFi `yaml:"wifi"`
	// Watchdog is the watchdog's module, empty when the board has none.
	// Stage 1 arms it when it is in InitramfsModules, else stage 2.
	Watchdog  string `yaml:"watchdog"`
	Squashfs  string `yaml:"squashfs"` // compression: zstd, gzip, xz
	Layout    Layout `yaml:"layout"`
	QEMU      *QEMU  `yaml:"qemu"`
	NeedsRepo string `yaml:"needsRepository"` // said when the kernel package is missing
}

// Kernel names the kernel package.
type Kernel struct {
	Package string `yaml:"package"` // a metapackage is followed to the real image
}

// Files takes files from a package: Map is source path in the package to
// destination in the boot partition (folders end in /).
type Files struct {
	Package string            `yaml:"package"`
	Map     map[string]string `yaml:"files"`
}

// WiFi names the firmware a board's radio loads from /lib/firmware: the
// files of a package that match the patterns (path.Match, in the package).
type WiFi struct {
	Package  string   `yaml:"package"`
	Firmware []string `yaml:"firmware"`
}

// Layout gives partition sizes in MiB.
type Layout struct {
	Table string `yaml:"table"` // gpt or mbr
	Boot  int    `yaml:"bootMiB"`
	Slot  int    `yaml:"slotMiB"`
	Data  int    `yaml:"minDataMiB"` // smallest data partition init accepts
}

// QEMU says how `cairn vm` boots images of this board.
type QEMU struct {
	Binary   string   `yaml:"binary"`
	Machine  string   `yaml:"machine"`
	CPU      string   `yaml:"cpu"`
	Memory   int      `yaml:"memoryMiB"`
	Firmware []string `yaml:"firmware"` // candidate UEFI code images, first found wins
	Vars     []string `yaml:"vars"`     // matching variable store templates
	Disk     string   `yaml:"disk"`     // virtio or sd
	NIC      string   `yaml:"nic"`
}

// Names lists every board, sorted.
func Names() []string {
	entries, _ := fs.Glob(profiles, "*.yaml")
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = strings.TrimSuffix(e, ".yaml")
	}
	sort.Strings(names)
	return names
}

// Get loads one board's profile.
func Get(name string) (*Profile, error) {
	data, err := profiles.ReadFile(name + ".yaml")
	if err != nil || strings.ContainsAny(name, "/.") {
		return nil, fmt.Errorf("%w %q: choose one of %s (see `cairn boards`)", ErrUnknown, name, strings.Join(Names(), ", "))
	}
	return parse(name, data)
}

func parse(name string, data []byte) (*Profile, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var p Profile
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("board %s: %w", name, err)
	}
	if p.Name != name {
		return nil, fmt.Errorf("board %s: profile names itself %q", name, p.Name)
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("board %s: %w", name, err)
	}
	return &p, nil
}

// Validate checks a profile's internal consistency.
func (p *Profile) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !slices.Contains([]string{"amd64", "arm64"}, p.Arch) {
		bad("arch %q: want amd64 or arm64", p.Arch)
	}
	if err := p.Family.Check(); err != nil {
		errs = append(errs, err)
	} else if p.Layout.Table != p.Family.Table() {
		bad("layout.table %q: the %s family uses %s", p.Layout.Table, p.Family, p.Family.Table())
	}
	if p.Kernel.Package == "" {
		bad("kernel.package is empty")
	}
	if len(p.Console) == 0 {
		bad("console is empty")
	}
	if !slices.Contains([]string{"zstd", "gzip", "xz"}, p.Squashfs) {
		bad("squashfs %q: want zstd, gzip or xz", p.Squashfs)
	}
	if p.Layout.Boot < 34 || p.Layout.Slot < 34 {
		bad("layout: boot and slot partitions are FAT32 and need at least 34 MiB")
	}
	if p.Family != boot.UEFI && len(p.DeviceTrees) == 0 {
		bad("a Raspberry Pi board needs deviceTrees")
	}
	for _, f := range p.Firmware {
		for src, dst := range f.Map {
			if path.IsAbs(dst) || strings.Contains(dst, "..") || src == "" {
				bad("firmware %s: %q -> %q must map a package path to a relative destination", f.Package, src, dst)
			}
		}
	}
	if w := p.WiFi; w != nil {
		if w.Package == "" || len(w.Firmware) == 0 {
			bad("wifi: name the firmware package and its files")
		}
		for _, f := range w.Firmware {
			if _, err := path.Match(f, ""); err != nil || !strings.HasPrefix(f, "lib/firmware/") || strings.Contains(f, "..") {
				bad("wifi.firmware %q: want a pattern under lib/firmware/", f)
			}
		}
	}
	return errors.Join(errs...)
}
