package configs

import (
	"errors"
	"gopkg.in/yaml.v3"
	"io/fs"
	"reflect"
	"slices"
	"strings"
)

// Layer lays the document in data (a cairn.yaml edited on the card's boot
// partition, say) over base: every top-level section that the document sets
// replaces base's whole section; sections it leaves out stay as they were.
// The document must name apiVersion and kind like any config. The result is
// validated as a whole; problems name the file each section came from.
// base is not changed.
func Layer(base *Config, file string, data []byte) (*Config, []Problem, error) {
	over, err := Decode(file, data)
	if err != nil {
		return nil, nil, err
	}
	var missing Problems
	for _, key := range []string{"apiVersion", "kind"} {
		if _, ok := over.pos[key]; !ok {
			missing = append(missing, Problem{File: file, Path: key, Msg: "required in every config file, also one laid over another; set " + key + ": " + map[string]string{"apiVersion": APIVersion, "kind": Kind}[key]})
		}
	}
	if len(missing) > 0 {
		return nil, nil, missing
	}
	c := &Config{Node: base.Node, File: base.File, pos: map[string]Pos{}, from: map[string]string{}}
	for k, v := range base.pos {
		c.pos[k] = v
	}
	for k, v := range base.from {
		c.from[k] = v
	}
	cv, ov := reflect.ValueOf(&c.Node).Elem(), reflect.ValueOf(&over.Node).Elem()
	for i := range cv.NumField() {
		key := yamlName(cv.Type().Field(i))
		if _, set := over.pos[key]; !set {
			continue
		}
		cv.Field(i).Set(ov.Field(i))
		for p := range c.pos {
			if topKey(p) == key {
				delete(c.pos, p)
			}
		}
		for p, pos := range over.pos {
			if topKey(p) == key {
				c.pos[p] = pos
			}
		}
		c.from[key] = file
	}
	warns, errs := c.Validate()
	if len(errs) > 0 {
		return nil, warns, errs
	}
	return c, warns, nil
}

// Sections lists the top-level keys that file set in c, in order.
func (c *Config) Sections(file string) []string {
	var keys []string
	for k, f := range c.from {
		if f == file {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// fileOf is the file that path was written in.
func (c *Config) fileOf(path string) string {
	if f, ok := c.from[topKey(path)]; ok {
		return f
	}
	return c.File
}

func topKey(path string) string {
	if i := strings.IndexAny(path, ".["); i >= 0 {
		return path[:i]
	}
	return path
}

// LoadWithCard loads the config at base and lays the one at card over it
// when that file exists; name is how messages call the card file. A card
// config that cannot be used (too large, not valid) is returned in cardErr
// and left out: a bad edit on the card must not stop the node.
func LoadWithCard(base, card, name string) (c *Config, warns []Problem, cardErr, err error) {
	c, warns, err = Load(base)
	if err != nil {
		return nil, warns, nil, err
	}
	data, err := ReadFile(card)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return c, warns, nil, nil
		}
		return c, warns, err, nil
	}
	layered, more, err := Layer(c, name, data)
	warns = append(warns, more...)
	if err != nil {
		return c, warns, err, nil
	}
	return layered, warns, nil, nil
}

// Problem is an error about the value at path, placed in its file and line,
// for checks made outside Validate (files the config points at).
func (c *Config) Problem(path, msg string) Problem {
	return Problem{File: c.fileOf(path), Pos: c.PosOf(path), Path: path, Msg: msg}
}

// Marshal writes the config as one YAML document that Parse reads back to
// the same Node: how init hands the config it resolved to cairnd.
func (c *Config) Marshal() ([]byte, error) {
	return yaml.Marshal(&c.Node)
}
