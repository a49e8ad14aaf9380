package manifest

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	objs, err := Parse([]byte(`# apps of the site
apiVersion: v1
kind: Namespace
metadata: {name: site}
---
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: site
data: {mode: edge}
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 {
		t.Fatalf("%d objects", len(objs))
	}
	if objs[0].ID() != "v1 Namespace - site" || objs[1].ID() != "v1 ConfigMap site settings" {
		t.Errorf("ids %q, %q", objs[0].ID(), objs[1].ID())
	}
	if objs[0].Line != 2 || objs[1].Line != 7 {
		t.Errorf("lines %d, %d", objs[0].Line, objs[1].Line)
	}
	if objs[1].Doc["data"].(map[string]any)["mode"] != "edge" {
		t.Errorf("doc %v", objs[1].Doc)
	}
}

func TestParseRefuses(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [x\n", "not YAML: yaml: line "},
		{"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\nkind: ConfigMap\nmetadata: {name: b}\n", "line 5: the object has no apiVersion"},
		{"apiVersion: v1\nkind: ConfigMap\n", "line 1: the object has no metadata.name"},
		{"- a\n- b\n", "line 1: the document is not a mapping"},
		{"apiVersion: v1\nkind: List\nmetadata: {name: l}\nitems: []\n", "write its items as separate documents"},
		{"# nothing\n", "no objects"},
	} {
		_, err := Parse([]byte(c.in))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: err %v, want %q", c.in, err, c.want)
		}
	}
}
