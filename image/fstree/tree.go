// Package fstree is the in-memory description of a filesystem that the image
// writers (squashfs, FAT, cpio) turn into bytes: paths, types, modes, owners
// and where each file's content comes from. Keeping it in memory, not on
// disk, lets a rootless build set owners, setuid bits and device nodes, and
// makes the output independent of the build host's umask and file times.
package fstree

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
)

// Entry is one node of the tree.
type Entry struct {
	Path     string      // clean, relative, "" for the root
	Mode     fs.FileMode // type and permission bits (fs.ModeSetuid etc. included)
	UID, GID uint32
	Target   string // symlink target
	Major    uint32 // device numbers for device nodes
	Minor    uint32
	Source   string // file to read the content from, or
	Data     []byte // the content itself, or
	// Content opens the content: a stream, such as a file of an update
	// bundle, that a writer may read once.
	Content func() (io.ReadCloser, error)
	Size    int64
}

// Name is the last element of the path.
func (e *Entry) Name() string { return path.Base(e.Path) }

// Open returns the content of a regular file.
func (e *Entry) Open() (io.ReadCloser, error) {
	if e.Source != "" {
		return os.Open(e.Source)
	}
	if e.Content != nil {
		return e.Content()
	}
	return io.NopCloser(bytes.NewReader(e.Data)), nil
}

// Tree maps clean relative paths to entries.
type Tree struct {
	entries map[string]*Entry
}

// New returns a tree holding just its root folder.
func New() *Tree {
	return &Tree{entries: map[string]*Entry{"": {Path: "", Mode: fs.ModeDir | 0o755}}}
}

func clean(p string) (string, error) {
	c := strings.TrimPrefix(path.Clean("/"+p), "/")
	if strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("path %q leaves the tree", p)
	}
	return c, nil
}

func (t *Tree) put(e *Entry) error {
	p, err := clean(e.Path)
	if err != nil {
		return err
	}
	e.Path = p
	if old, ok := t.entries[p]; ok && old.Mode.IsDir() && e.Mode.IsDir() {
		old.Mode, old.UID, old.GID = e.Mode, e.UID, e.GID
		return nil
	}
	if err := t.parents(p); err != nil {
		return err
	}
	t.entries[p] = e
	return nil
}

func (t *Tree) parents(p string) error {
	dir := path.Dir(p)
	if dir == "." {
		return nil
	}
	if e, ok := t.entries[dir]; ok {
		if !e.Mode.IsDir() {
			return fmt.Errorf("%s: %s is not a folder", p, dir)
		}
		return nil
	}
	if err := t.parents(dir); err != nil {
		return err
	}
	t.entries[dir] = &Entry{Path: dir, Mode: fs.ModeDir | 0o755}
	return nil
}

// Mkdir adds a folder (and its parents).
func (t *Tree) Mkdir(p string, perm fs.FileMode) error {
	return t.put(&Entry{Path: p, Mode: fs.ModeDir | perm})
}

// AddData adds a regular file with the given content.
func (t *Tree) AddData(p string, perm fs.FileMode, data []byte) error {
	return t.put(&Entry{Path: p, Mode: perm, Data: data, Size: int64(len(data))})
}

// AddFile adds a regular file whose content is read from src when written.
func (t *Tree) AddFile(p string, perm fs.FileMode, src string) error {
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", src)
	}
	return t.put(&Entry{Path: p, Mode: perm, Source: src, Size: st.Size()})
}

// Put adds a copy of e, an entry of another tree, at p.
func (t *Tree) Put(p string, e *Entry) error {
	c := *e
	c.Path = p
	return t.put(&c)
}

// Symlink adds a symbolic link.
func (t *Tree) Symlink(p, target string) error {
	return t.put(&Entry{Path: p, Mode: fs.ModeSymlink | 0o777, Target: target, Size: int64(len(target))})
}

// CharDev adds a character device node.
func (t *Tree) CharDev(p string, perm fs.FileMode, major, minor uint32) error {
	return t.put(&Entry{Path: p, Mode: fs.ModeDevice | fs.ModeCharDevice | perm, Major: major, Minor: minor})
}

// Get returns the entry at p.
func (t *Tree) Get(p string) (*Entry, bool) {
	c, err := clean(p)
	if err != nil {
		return nil, false
	}
	e, ok := t.entries[c]
	return e, ok
}

// Len is the number of entries, the root included.
func (t *Tree) Len() int { return len(t.entries) }

// Walk lists every entry in path order, parents before children.
func (t *Tree) Walk() []*Entry {
	out := make([]*Entry, 0, len(t.entries))
	for _, e := range t.entries {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// ChildMap groups every entry under its parent folder, each list sorted by
// name; one pass for writers that visit every folder.
func (t *Tree) ChildMap() map[string][]*Entry {
	m := map[string][]*Entry{}
	for _, e := range t.Walk() {
		if e.Path == "" {
			continue
		}
		dir := path.Dir(e.Path)
		if dir == "." {
			dir = ""
		}
		m[dir] = append(m[dir], e)
	}
	for _, list := range m {
		sort.Slice(list, func(i, j int) bool { return list[i].Name() < list[j].Name() })
	}
	return m
}

// Size is the sum of the regular files' sizes.
func (t *Tree) Size() int64 {
	var n int64
	for _, e := range t.entries {
		if e.Mode.IsRegular() {
			n += e.Size
		}
	}
	return n
}
