package apt

import (
	"bufio"
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"pault.ag/go/debian/dependency"
	"pault.ag/go/debian/version"
)

// Package is one binary package from an index.
type Package struct {
	Name, Version, Arch string
	Filename            string // path below the archive's base URI
	SHA256              string
	Size                int64
	Depends, PreDepends string
	Provides            string
	Base                string // archive base URI; empty for local .debs
	Local               string // path of a local .deb (offline folder)
}

func (p *Package) String() string { return p.Name + " " + p.Version }

// Index holds the packages of every source for one architecture.
type Index struct {
	byName   map[string][]*Package
	provides map[string][]*Package
}

func newIndex() *Index {
	return &Index{byName: map[string][]*Package{}, provides: map[string][]*Package{}}
}

// add records a package, newest versions first.
func (ix *Index) add(p *Package) {
	ix.byName[p.Name] = append(ix.byName[p.Name], p)
	for _, prov := range strings.Split(p.Provides, ",") {
		name, _, _ := strings.Cut(strings.TrimSpace(prov), " ")
		if name != "" {
			ix.provides[name] = append(ix.provides[name], p)
		}
	}
}

func (ix *Index) sort() {
	for _, ps := range ix.byName {
		sort.SliceStable(ps, func(i, j int) bool { return cmpVersion(ps[i].Version, ps[j].Version) > 0 })
	}
}

func cmpVersion(a, b string) int {
	va, ea := version.Parse(a)
	vb, eb := version.Parse(b)
	if ea != nil || eb != nil {
		return strings.Compare(a, b)
	}
	return version.Compare(va, vb)
}

// Len is the number of package names known.
func (ix *Index) Len() int { return len(ix.byName) }

// Lookup returns the newest version of a package, or of one that provides it.
func (ix *Index) Lookup(name string) (*Package, bool) {
	if ps := ix.byName[name]; len(ps) > 0 {
		return ps[0], true
	}
	if ps := ix.provides[name]; len(ps) > 0 {
		return ps[0], true
	}
	return nil, false
}

// parsePackages scans a Packages file for the fields the build needs. It is a
// field scanner rather than a general control-file parser: a full index has
// ~60,000 stanzas and this is on every build's path.
func parsePackages(data []byte, base string, ix *Index) error {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<22)
	p := &Package{Base: base}
	flush := func() {
		if p.Name != "" && p.Filename != "" {
			ix.add(p)
		}
		p = &Package{Base: base}
	}
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			flush()
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue // continuation of a field we do not keep
		}
		i := bytes.IndexByte(line, ':')
		if i < 0 {
			continue
		}
		v := string(bytes.TrimSpace(line[i+1:]))
		switch string(line[:i]) {
		case "Package":
			p.Name = v
		case "Version":
			p.Version = v
		case "Architecture":
			p.Arch = v
		case "Filename":
			p.Filename = v
		case "SHA256":
			p.SHA256 = v
		case "Size":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return fmt.Errorf("package %s: bad Size %q", p.Name, v)
			}
			p.Size = n
		case "Depends":
			p.Depends = v
		case "Pre-Depends":
			p.PreDepends = v
		case "Provides":
			p.Provides = v
		}
	}
	flush()
	return sc.Err()
}

// Closure returns the named packages and everything they depend on
// (Depends and Pre-Depends; the first alternative that exists), sorted by
// name. Version constraints are not solved: the newest version is taken.
func (ix *Index) Closure(names []string) ([]*Package, error) {
	chosen := map[string]*Package{}
	var visit func(name, from string) error
	visit = func(name, from string) error {
		p, ok := ix.Lookup(name)
		if !ok {
			if from != "" {
				return fmt.Errorf("%w: %s (needed by %s)", ErrNotFound, name, from)
			}
			return fmt.Errorf("%w: %s", ErrNotFound, name)
		}
		if chosen[p.Name] != nil {
			return nil
		}
		chosen[p.Name] = p
		for _, field := range []string{p.PreDepends, p.Depends} {
			if field == "" {
				continue
			}
			dep, err := dependency.Parse(field)
			if err != nil {
				return fmt.Errorf("package %s: bad dependency field %q: %w", p.Name, field, err)
			}
			for _, rel := range dep.Relations {
				var pick string
				for _, alt := range rel.Possibilities {
					if _, ok := ix.Lookup(alt.Name); ok {
						pick = alt.Name
						break
					}
				}
				if pick == "" && len(rel.Possibilities) > 0 {
					pick = rel.Possibilities[0].Name
				}
				if err := visit(pick, p.Name); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for _, n := range names {
		if err := visit(n, ""); err != nil {
			return nil, err
		}
	}
	out := make([]*Package, 0, len(chosen))
	for _, p := range chosen {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
