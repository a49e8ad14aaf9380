package configs

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"github.com/invopop/jsonschema"
)

// Schema returns the JSON Schema of the config, generated from the Go types.
func Schema() ([]byte, error) {
	r := &jsonschema.Reflector{
		FieldNameTag:               "yaml",
		RequiredFromJSONSchemaTags: true,
		DoNotReference:             true,
	}
	s := r.Reflect(&Node{})
	s.ID = "https://cairn.dev/schema/" + APIVersion + "/node.json"
	s.Title = "Cairn node config"
	return json.MarshalIndent(s, "", "  ")
}

// Reference renders the config reference as Markdown, one table row per
// field, from the same struct tags as the schema.
func Reference() string {
	var b strings.Builder
	b.WriteString("| field | type | meaning |\n|---|---|---|\n")
	refRows(&b, reflect.TypeFor[Node](), "")
	return b.String()
}

func refRows(b *strings.Builder, t reflect.Type, prefix string) {
	for i := range t.NumField() {
		f := t.Field(i)
		name := yamlName(f)
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		p := prefix + name
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		fmt.Fprintf(b, "| `%s` | %s | %s |\n", p, typeName(ft), f.Tag.Get("jsonschema_description"))
		switch {
		case ft.Kind() == reflect.Struct && !isScalar(ft):
			refRows(b, ft, p+".")
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct && !isScalar(ft.Elem()):
			refRows(b, ft.Elem(), p+"[].")
		}
	}
}

func isScalar(t reflect.Type) bool {
	switch t {
	case reflect.TypeFor[Prefix](), reflect.TypeFor[IP](), reflect.TypeFor[FileMode]():
		return true
	}
	return false
}

func typeName(t reflect.Type) string {
	switch {
	case t == reflect.TypeFor[Prefix]():
		return "CIDR"
	case t == reflect.TypeFor[IP]():
		return "IP"
	case t == reflect.TypeFor[FileMode]():
		return "octal mode"
	}
	switch t.Kind() {
	case reflect.Struct:
		return "object"
	case reflect.Slice:
		return "list of " + typeName(t.Elem())
	case reflect.Map:
		return "map of " + typeName(t.Elem())
	case reflect.Bool:
		return "bool"
	case reflect.Int:
		return "int"
	}
	return t.Kind().String()
}
