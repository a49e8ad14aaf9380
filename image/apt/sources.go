package apt

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Source is one suite of one archive.
type Source struct {
	URI        string // base URL, no trailing slash
	Suite      string
	Components []string
	Keyring    string // path of an OpenPGP keyring file
}

func (s Source) String() string {
	return fmt.Sprintf("%s %s [%s]", s.URI, s.Suite, strings.Join(s.Components, " "))
}

// DefaultKeyring is where Debian hosts keep the archive keys.
const DefaultKeyring = "/usr/share/keyrings/debian-archive-keyring.gpg"

// HostSources reads the build host's apt sources (sources.list, and the
// deb822 and one-line files in sources.list.d) under root ("/" normally).
// Only "deb" entries count; disabled files are skipped.
func HostSources(root string) ([]Source, error) {
	dir := filepath.Join(root, "etc/apt")
	var out []Source
	files := []string{filepath.Join(dir, "sources.list")}
	more, _ := filepath.Glob(filepath.Join(dir, "sources.list.d", "*"))
	slices.Sort(more)
	files = append(files, more...)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		switch {
		case strings.HasSuffix(f, ".sources"):
			out = append(out, parseDeb822(data, root)...)
		case strings.HasSuffix(f, ".list"):
			out = append(out, parseOneLine(data, root)...)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("the build host has no apt sources in %s; list the archives under repositories: in the config", dir)
	}
	return out, nil
}

func parseDeb822(data []byte, root string) []Source {
	var out []Source
	for _, para := range bytes.Split(data, []byte("\n\n")) {
		f := map[string]string{}
		var last string
		for _, line := range strings.Split(string(para), "\n") {
			if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
				continue
			}
			if line[0] == ' ' || line[0] == '\t' {
				f[last] += " " + strings.TrimSpace(line)
				continue
			}
			k, v, ok := strings.Cut(line, ":")
			if ok {
				last = strings.ToLower(strings.TrimSpace(k))
				f[last] = strings.TrimSpace(v)
			}
		}
		if !slices.Contains(strings.Fields(f["types"]), "deb") || strings.EqualFold(f["enabled"], "no") {
			continue
		}
		keyring := f["signed-by"]
		if keyring == "" || strings.Contains(keyring, "BEGIN PGP") {
			keyring = DefaultKeyring
		}
		for _, uri := range strings.Fields(f["uris"]) {
			for _, suite := range strings.Fields(f["suites"]) {
				out = append(out, Source{URI: strings.TrimRight(uri, "/"), Suite: suite, Components: strings.Fields(f["components"]), Keyring: filepath.Join(root, keyring)})
			}
		}
	}
	return out
}

func parseOneLine(data []byte, root string) []Source {
	var out []Source
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) < 3 || fields[0] != "deb" {
			continue
		}
		keyring := DefaultKeyring
		rest := fields[1:]
		if strings.HasPrefix(rest[0], "[") {
			for len(rest) > 0 {
				opt := strings.Trim(rest[0], "[]")
				if v, ok := strings.CutPrefix(opt, "signed-by="); ok {
					keyring = v
				}
				done := strings.HasSuffix(rest[0], "]")
				rest = rest[1:]
				if done {
					break
				}
			}
		}
		if len(rest) < 2 {
			continue
		}
		out = append(out, Source{URI: strings.TrimRight(rest[0], "/"), Suite: rest[1], Components: rest[2:], Keyring: filepath.Join(root, keyring)})
	}
	return out
}

// WithComponents returns sources that also carry the given components.
func WithComponents(srcs []Source, extra []string) []Source {
	out := make([]Source, len(srcs))
	for i, s := range srcs {
		s.Components = slices.Clone(s.Components)
		for _, c := range extra {
			if !slices.Contains(s.Components, c) {
				s.Components = append(s.Components, c)
			}
		}
		out[i] = s
	}
	return out
}
