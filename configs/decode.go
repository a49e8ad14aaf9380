package configs

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// ErrInvalid is wrapped by every error about the content of a config.
var ErrInvalid = errors.New("invalid config")

// Pos is a place in a YAML file.
type Pos struct{ Line, Col int }

// Problem is one thing wrong (or worth a warning) in a config.
type Problem struct {
	File string
	Pos  Pos
	Path string // dotted field path, e.g. network.interfaces[0].addresses[1]
	Msg  string
}

func (p Problem) String() string {
	p = p.clipped()
	loc := p.File
	if p.Pos.Line > 0 {
		loc = fmt.Sprintf("%s:%d:%d", p.File, p.Pos.Line, p.Pos.Col)
	}
	if p.Path == "" {
		return fmt.Sprintf("%s: %s", loc, p.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", loc, p.Path, p.Msg)
}

// Problems is a list of errors; it is itself an error wrapping ErrInvalid.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.Is(err, ErrInvalid) find the category.
func (ps Problems) Unwrap() error { return ErrInvalid }

// Config is a decoded document with the positions of its fields.
type Config struct {
	Node
	File string
	pos  map[string]Pos
	from map[string]string // top-level key → file, for sections laid over File
}

// PosOf returns where path was written, or the closest enclosing field.
func (c *Config) PosOf(path string) Pos {
	for p := path; ; {
		if pos, ok := c.pos[p]; ok {
			return pos
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			return c.pos[""]
		}
		p = p[:i]
	}
}

// Load reads, decodes and validates a config file of at most MaxFileBytes.
// Warnings are returned alongside a nil error; errors come back as Problems.
func Load(path string) (*Config, []Problem, error) {
	data, err := ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes and validates a document; file names it in messages.
func Parse(file string, data []byte) (*Config, []Problem, error) {
	c, err := Decode(file, data)
	if err != nil {
		return nil, nil, err
	}
	warns, errs := c.Validate()
	if len(errs) > 0 {
		return nil, warns, errs
	}
	return c, warns, nil
}

// Decode reads one YAML document strictly into a Config without validating
// it, within the bounds in limits.go.
func Decode(file string, data []byte) (*Config, error) {
	if len(data) > MaxFileBytes {
		return nil, tooLarge(file)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, Problems{Problem{File: file, Pos: yamlErrPos(err), Msg: "not valid YAML: " + yamlErrMsg(err)}.clipped()}
	}
	c := &Config{File: file, pos: map[string]Pos{}}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, Problems{{File: file, Msg: "the file is empty; start from configs/examples/minimal.yaml"}}
	}
	d := decoder{file: file, pos: c.pos}
	d.value(doc.Content[0], reflect.ValueOf(&c.Node).Elem(), "")
	if errs := d.errs.done(); len(errs) > 0 {
		return nil, errs
	}
	return c, nil
}

type decoder struct {
	file   string
	pos    map[string]Pos
	errs   problemList
	values int // decoded so far, aliases counted at every use
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	if d.errs.room() {
		d.errs.add(Problem{File: d.file, Pos: Pos{n.Line, n.Column}, Path: path, Msg: fmt.Sprintf(format, args...)})
	}
}

func (d *decoder) value(n *yaml.Node, v reflect.Value, path string) {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if d.values++; d.values > maxValues {
		if d.values == maxValues+1 {
			d.fail(n, path, "the document has more than %d values, counting an alias (*name) again at every use; a node config needs far fewer, so remove repeated aliases and values the node does not need", maxValues)
		}
		return
	}
	d.pos[path] = Pos{n.Line, n.Column}
	if v.CanAddr() && v.Addr().Type().Implements(unmarshalerType) {
		if err := v.Addr().Interface().(yaml.Unmarshaler).UnmarshalYAML(n); err != nil {
			d.fail(n, path, "%v", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if n.Tag == "!!null" {
			return
		}
		v.Set(reflect.New(v.Type().Elem()))
		d.value(n, v.Elem(), path)
	case reflect.Struct:
		d.structure(n, v, path)
	case reflect.Slice:
		if n.Tag == "!!null" {
			return
		}
		if n.Kind != yaml.SequenceNode {
			d.fail(n, path, "expected a list, got %s", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.value(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Map:
		if n.Tag == "!!null" {
			return
		}
		if n.Kind != yaml.MappingNode {
			d.fail(n, path, "expected a mapping of names to values, got %s", describe(n))
			return
		}
		m := reflect.MakeMap(v.Type())
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, item := n.Content[i], n.Content[i+1]
			if len(k.Value) > maxKeyBytes {
				d.fail(k, path, "a key is %d bytes long; keys here are at most %d", len(k.Value), maxKeyBytes)
				continue
			}
			kpath := join(path, k.Value)
			if m.MapIndex(reflect.ValueOf(k.Value)).IsValid() {
				d.fail(k, kpath, "the key %q is given twice", k.Value)
				continue
			}
			elem := reflect.New(v.Type().Elem()).Elem()
			d.value(item, elem, kpath)
			m.SetMapIndex(reflect.ValueOf(k.Value), elem)
		}
		v.Set(m)
	default:
		d.scalar(n, v, path)
	}
}

func (d *decoder) structure(n *yaml.Node, v reflect.Value, path string) {
	if n.Tag == "!!null" {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping with fields %s, got %s", strings.Join(fieldNames(v.Type()), ", "), describe(n))
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, item := n.Content[i], n.Content[i+1]
		kpath := join(path, k.Value)
		idx, ok := fieldIndex(v.Type(), k.Value)
		if !ok {
			d.fail(k, kpath, "unknown field %q; allowed here: %s", k.Value, strings.Join(fieldNames(v.Type()), ", "))
			continue
		}
		if seen[k.Value] {
			d.fail(k, kpath, "the field %q is given twice", k.Value)
			continue
		}
		seen[k.Value] = true
		d.value(item, v.Field(idx), kpath)
	}
}

func (d *decoder) scalar(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "expected %s, got %s", kindName(v.Kind()), describe(n))
		return
	}
	if v.Kind() == reflect.String && n.Tag != "!!str" && n.Tag != "!!null" {
		// Numbers and booleans where text is wanted are accepted as written
		// (sysctl values, labels); YAML would otherwise lose "0644" or "on".
		v.SetString(n.Value)
		return
	}
	if err := n.Decode(v.Addr().Interface()); err != nil {
		d.fail(n, path, "expected %s, got %s", kindName(v.Kind()), describe(n))
	}
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	if n.Tag == "!!null" {
		return "nothing"
	}
	return fmt.Sprintf("%q", n.Value)
}

func kindName(k reflect.Kind) string {
	switch k {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative whole number"
	case reflect.String:
		return "text"
	}
	return k.String()
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return name
}

func fieldIndex(t reflect.Type, key string) (int, bool) {
	for i := range t.NumField() {
		if f := t.Field(i); f.IsExported() && yamlName(f) == key {
			return i, true
		}
	}
	return 0, false
}

func fieldNames(t reflect.Type) []string {
	var names []string
	for i := range t.NumField() {
		if f := t.Field(i); f.IsExported() && yamlName(f) != "" && yamlName(f) != "-" {
			names = append(names, yamlName(f))
		}
	}
	sort.Strings(names)
	return names
}

// yaml.v3 reports syntax errors as "yaml: line N: msg".
func yamlErrPos(err error) Pos {
	var line int
	if _, e := fmt.Sscanf(strings.TrimPrefix(err.Error(), "yaml: "), "line %d:", &line); e == nil {
		return Pos{Line: line, Col: 1}
	}
	return Pos{}
}

func yamlErrMsg(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if i := strings.Index(msg, ": "); strings.HasPrefix(msg, "line ") && i > 0 {
		msg = msg[i+2:]
	}
	return msg
}
