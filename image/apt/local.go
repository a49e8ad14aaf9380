package apt

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/cairn-os/cairn/image/deb"
)

// LocalIndex indexes the .deb files for arch (and arch "all") in a folder,
// for air-gapped builds; a folder may hold packages of several
// architectures. Their integrity is the operator's to vouch for: no
// signature covers them.
func LocalIndex(dir, arch string) (*Index, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.deb"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s holds no .deb files; put the kernel, firmware and userland packages there", dir)
	}
	sort.Strings(files)
	ix := newIndex()
	for _, f := range files {
		c, err := deb.Control(f)
		if err != nil {
			return nil, err
		}
		if a := c["Architecture"]; a != arch && a != "all" {
			continue
		}
		st, err := os.Stat(f)
		if err != nil {
			return nil, err
		}
		ix.add(&Package{
			Name: c["Package"], Version: c["Version"], Arch: c["Architecture"],
			Depends: c["Depends"], PreDepends: c["Pre-Depends"], Provides: c["Provides"],
			Size: st.Size(), Local: f, Filename: filepath.Base(f),
		})
	}
	if len(ix.byName) == 0 {
		return nil, fmt.Errorf("%s holds no .deb files for %s; put the %s kernel, firmware and userland packages there", dir, arch, arch)
	}
	ix.sort()
	return ix, nil
}
