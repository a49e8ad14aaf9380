package configs

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

const layerBase = `apiVersion: cairn.dev/v1alpha1
kind: Node
hostname: baked
files:
  - path: /etc/motd
    content: from the image
network:
  interfaces:
    - name: eth0
      dhcp4: true
`

func TestLayerReplacesWholeSections(t *testing.T) {
	base, _, err := Parse("node.yaml", []byte(layerBase))
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := Layer(base, "cairn.yaml", []byte(`apiVersion: cairn.dev/v1alpha1
kind: Node
hostname: edited-on-the-card
network:
  interfaces:
    - name: eth1
      addresses: [192.168.7.2/24]
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Hostname != "edited-on-the-card" {
		t.Errorf("hostname %q", c.Hostname)
	}
	if len(c.Network.Interfaces) != 1 || c.Network.Interfaces[0].Name != "eth1" || c.Network.Interfaces[0].DHCP4 != nil {
		t.Errorf("network not replaced as a whole: %+v", c.Network.Interfaces)
	}
	if len(c.Files) != 1 || c.Files[0].Content != "from the image" {
		t.Errorf("files from the image lost: %+v", c.Files)
	}
	if got := c.Sections("cairn.yaml"); !slices.Equal(got, []string{"apiVersion", "hostname", "kind", "network"}) {
		t.Errorf("sections from cairn.yaml: %v", got)
	}
	if base.Hostname != "baked" || base.Network.Interfaces[0].Name != "eth0" {
		t.Errorf("Layer changed its base: %+v", base.Node)
	}
}

func TestLayerProblemsNameTheirFile(t *testing.T) {
	base, _, err := Parse("node.yaml", []byte(layerBase))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ doc, want string }{
		{"hostname: x\n", "cairn.yaml: apiVersion: required in every config file"},
		{"apiVersion: cairn.dev/v1alpha1\nkind: Node\nhostnme: x\n", `cairn.yaml:3:1: hostnme: unknown field`},
		{"apiVersion: cairn.dev/v1alpha1\nkind: Node\n\ncluster:\n  role: agent\n", "cairn.yaml:5:"},
		{"apiVersion: cairn.dev/v1alpha1\nkind: Node\nhostname: Not_Valid\n", `cairn.yaml:3:11: hostname: "Not_Valid" is not a valid host name`},
	} {
		_, _, err := Layer(base, "cairn.yaml", []byte(tc.doc))
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.doc, err, tc.want)
		}
	}
}

// TestMarshalRoundTrip writes each example, and a config with every kind
// of value, and reads it back to the same Node.
func TestMarshalRoundTrip(t *testing.T) {
	files, _ := filepath.Glob("examples/*.yaml")
	docs := map[string][]byte{"all.yaml": []byte(`apiVersion: cairn.dev/v1alpha1
kind: Node
hostname: edge-1
network:
  interfaces:
    - name: eth0
      addresses: [192.168.1.10/24, "2001:db8::5/64"]
      gateway4: 192.168.1.1
      mtu: 1500
    - mac: "aa:bb:cc:dd:ee:ff"
      dhcp4: false
  dns: {servers: [192.168.1.1], search: [lan]}
time: {ntp: [pool.example:123]}
files:
  - {path: /etc/motd, content: hi, mode: "0640", owner: "1:2"}
sysctl: {net.ipv4.ip_forward: "1"}
modules: [wireguard]
cluster:
  role: server
  nodeIP: 192.168.1.10
  labels: {zone: a}
  taints: ["edge=true:NoSchedule"]
  extraArgs: {kubelet: [v=2]}
debug: {console: true}
`)}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs[f] = data
	}
	for name, data := range docs {
		c, _, err := Parse(name, data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out, err := c.Marshal()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		back, _, err := Parse("effective.yaml", out)
		if err != nil {
			t.Fatalf("%s written as\n%s\ndoes not parse: %v", name, out, err)
		}
		if !reflect.DeepEqual(back.Node, c.Node) {
			t.Errorf("%s: read back as %+v, want %+v\n%s", name, back.Node, c.Node, out)
		}
	}
}
