// Package manifest reads the Kubernetes manifests a config bakes into a
// server image (cluster.manifests): YAML files of one or more documents,
// each one object. The builder checks them with Parse, and the server
// applies what Parse returns.
package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"gopkg.in/yaml.v3"
)

// Object is one document of a manifest.
type Object struct {
	APIVersion, Kind, Namespace, Name string
	Doc                               map[string]any
	Line                              int // where the document starts
}

// ID names the object in messages and in the server's record of what it
// applied: "apiVersion kind namespace name" ("-" for no namespace).
func (o Object) ID() string {
	ns := o.Namespace
	if ns == "" {
		ns = "-"
	}
	return strings.Join([]string{o.APIVersion, o.Kind, ns, o.Name}, " ")
}

// Parse reads the documents of a manifest file. Empty documents are
// skipped. An error names the line.
func Parse(data []byte) ([]Object, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []Object
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("not YAML: %w", err)
		}
		if len(n.Content) == 0 || n.Content[0].Tag == "!!null" {
			continue
		}
		line := n.Content[0].Line
		var doc map[string]any
		if err := n.Decode(&doc); err != nil {
			return nil, fmt.Errorf("line %d: the document is not a mapping of fields (an object): %v", line, err)
		}
		o := Object{Doc: doc, Line: line}
		meta, _ := doc["metadata"].(map[string]any)
		for _, f := range []struct {
			dst  *string
			v    any
			name string
		}{{&o.APIVersion, doc["apiVersion"], "apiVersion"}, {&o.Kind, doc["kind"], "kind"}, {&o.Name, meta["name"], "metadata.name"}} {
			s, ok := f.v.(string)
			if !ok || s == "" {
				return nil, fmt.Errorf("line %d: the object has no %s", line, f.name)
			}
			*f.dst = s
		}
		o.Namespace, _ = meta["namespace"].(string)
		if strings.HasSuffix(o.Kind, "List") {
			return nil, fmt.Errorf("line %d: %s %q is a list; write its items as separate documents (---)", line, o.Kind, o.Name)
		}
		out = append(out, o)
	}
	if len(out) == 0 {
		return nil, errors.New("no objects in the file")
	}
	return out, nil
}
