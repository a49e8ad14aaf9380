package configs

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestBadConfigs(t *testing.T) {
	cases := []struct {
		name, doc, want string
	}{
		{"unknown key", "apiVersion: cairn.dev/v1alpha1\nkind: Node\nhostnam: x\n",
			"t.yaml:3:1: hostnam: unknown field \"hostnam\"; allowed here: apiVersion,"},
		{"nested unknown", "apiVersion: cairn.dev/v1alpha1\nkind: Node\nnetwork:\n  interfaces:\n    - name: eth0\n      dhcp: true\n",
			"t.yaml:6:7: network.interfaces[0].dhcp: unknown field \"dhcp\""},
		{"wrong type", "apiVersion: cairn.dev/v1alpha1\nkind: Node\nnetwork:\n  interfaces:\n    - name: eth0\n      mtu: big\n",
			"t.yaml:6:12: network.interfaces[0].mtu: expected a whole number, got \"big\""},
		{"bad cidr", "apiVersion: cairn.dev/v1alpha1\nkind: Node\nnetwork:\n  interfaces:\n    - name: eth0\n      addresses: [10.0.0.300/24]\n",
			"t.yaml:6:19: network.interfaces[0].addresses[0]: \"10.0.0.300/24\" is not an address in CIDR form"},
		{"missing kind", "apiVersion: cairn.dev/v1alpha1\n",
			"t.yaml:1:1: kind: required; set kind: Node"},
		{"agent without server", "apiVersion: cairn.dev/v1alpha1\nkind: Node\ncluster:\n  role: agent\n",
			"t.yaml:4:3: cluster.server: an agent needs the URL"},
		{"IPv6 node address", "apiVersion: cairn.dev/v1alpha1\nkind: Node\ncluster:\n  role: server\n  nodeIP: fd00::1\n",
			"t.yaml:5:11: cluster.nodeIP: fd00::1 is not an IPv4 address; the pod network between nodes runs over IPv4"},
		{"bad node address", "apiVersion: cairn.dev/v1alpha1\nkind: Node\ncluster:\n  role: server\n  nodeIP: 10.0.0\n",
			"t.yaml:5:11: cluster.nodeIP: \"10.0.0\" is not an IP address"},
		{"bad role", "apiVersion: cairn.dev/v1alpha1\nkind: Node\ncluster:\n  role: master\n",
			"t.yaml:4:9: cluster.role: \"master\" is not a role; use server or agent"},
		{"file on root", "apiVersion: cairn.dev/v1alpha1\nkind: Node\nfiles:\n  - path: /usr/bin/x\n    content: y\n",
			"t.yaml:4:11: files[0].path: \"/usr/bin/x\" is on the read-only root"},
		{"bad mode", "apiVersion: cairn.dev/v1alpha1\nkind: Node\nfiles:\n  - path: /etc/x\n    mode: \"0999\"\n",
			"t.yaml:5:11: files[0].mode: \"0999\" is not an octal mode"},
		{"setuid mode", "apiVersion: cairn.dev/v1alpha1\nkind: Node\nfiles:\n  - path: /etc/x\n    mode: \"4755\"\n",
			"t.yaml:5:11: files[0].mode: 4755 sets the setuid, setgid or sticky bit, which init does not write; use a mode from 0000 to 0777"},
		{"sticky mode", "apiVersion: cairn.dev/v1alpha1\nkind: Node\nfiles:\n  - path: /var/x\n    mode: \"1777\"\n",
			"files[0].mode: 1777 sets the setuid, setgid or sticky bit"},
		{"cairnd's state", "apiVersion: cairn.dev/v1alpha1\nkind: Node\nfiles:\n  - path: /var/lib/cairn/server/db\n",
			"t.yaml:4:11: files[0].path: \"/var/lib/cairn/server/db\" is in /var/lib/cairn, which holds cairnd's cluster state and keys and init's saved clock, so choose a path outside it"},
		{"the generated /etc behind /etc", "apiVersion: cairn.dev/v1alpha1\nkind: Node\nfiles:\n  - path: /run/cairn/etc/passwd\n",
			"files[0].path: \"/run/cairn/etc/passwd\" is in /run/cairn, which holds init's and cairnd's own state"},
		{"resolv.conf", "apiVersion: cairn.dev/v1alpha1\nkind: Node\nfiles:\n  - path: /etc/resolv.conf\n",
			"files[0].path: \"/etc/resolv.conf\" holds the resolver settings that init rewrites from network.dns and DHCP, so set network.dns instead"},
		{"list expected", "apiVersion: cairn.dev/v1alpha1\nkind: Node\nmodules: dummy\n",
			"t.yaml:3:10: modules: expected a list, got \"dummy\""},
		{"syntax", "apiVersion: [\n", "t.yaml:"},
		{"gateway without address", "apiVersion: cairn.dev/v1alpha1\nkind: Node\nnetwork:\n  interfaces:\n    - name: eth0\n      gateway4: 10.0.0.1\n",
			"t.yaml:6:17: network.interfaces[0].gateway4: a gateway needs a static address"},
		{"duplicate key", "apiVersion: cairn.dev/v1alpha1\nkind: Node\nhostname: a\nhostname: b\n",
			"hostname: the field \"hostname\" is given twice"},
		{"bad pubkey", "apiVersion: cairn.dev/v1alpha1\nkind: Node\nupdate:\n  publicKeys: [abc]\n",
			"t.yaml:4:16: update.publicKeys[0]: not an ed25519 public key"},
		{"empty", "", "t.yaml: the file is empty"},
		{"datastore without a driver", "apiVersion: cairn.dev/v1alpha1\nkind: Node\ncluster:\n  role: server\n  datastore: nats://db.lan:4222\n",
			"cluster.datastore: \"nats://db.lan:4222\" is not a datastore URL; use sqlite://, postgres://, mysql:// or https:// (etcd)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Parse("t.yaml", []byte(tc.doc))
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got  %q\nwant %q", err.Error(), tc.want)
			}
		})
	}
}

func TestWarnings(t *testing.T) {
	doc := "apiVersion: cairn.dev/v1alpha1\nkind: Node\nnetwork:\n  interfaces:\n    - name: eth1\n      dhcp4: false\n"
	_, warns, err := Parse("t.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 1 || !strings.Contains(warns[0].String(), "comes up without an address") {
		t.Errorf("warnings %v", warns)
	}
}

func TestDebugConsoleOnAServerWarns(t *testing.T) {
	for role, want := range map[string]int{"server": 1, "agent": 0} {
		doc := "apiVersion: cairn.dev/v1alpha1\nkind: Node\ncluster:\n  role: " + role + "\n  server: https://10.0.0.1:6443\n  token: cairn1." + strings.Repeat("ab", 32) + ".0123456789abcdef\ndebug:\n  console: true\n"
		_, warns, err := Parse("t.yaml", []byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for _, w := range warns {
			if strings.HasPrefix(w.String(), "t.yaml:8:12: debug.console: the debug console answers anyone") {
				got++
			}
		}
		if got != want {
			t.Errorf("%s: warnings %v", role, warns)
		}
	}
}

func TestKubeletSysctlsWarn(t *testing.T) {
	doc := "apiVersion: cairn.dev/v1alpha1\nkind: Node\nsysctl:\n  kernel.panic: \"0\"\n  vm.overcommit_memory: \"1\"\ncluster:\n  role: server\n"
	_, warns, err := Parse("t.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 1 || !strings.Contains(warns[0].String(), "sysctl.kernel.panic: cluster nodes run with kernel.panic=10") {
		t.Errorf("warnings %v", warns)
	}
}

func TestWiFiChecks(t *testing.T) {
	doc := "apiVersion: cairn.dev/v1alpha1\nkind: Node\nnetwork:\n  wifi:\n    - ssid: lab\n"
	_, warns, err := Parse("t.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 1 || !strings.Contains(warns[0].String(), "network.wifiCountry: no country is set") {
		t.Errorf("a network without a country: warnings %v", warns)
	}
	for _, c := range []struct{ doc, want string }{
		{"network:\n  wifiCountry: de\n", `network.wifiCountry: "de" is not a country code`},
		{"network:\n  wifiCountry: DEU\n", `network.wifiCountry: "DEU" is not a country code`},
		{"network:\n  wifi:\n    - {ssid: lab, psk: \"caf\u00e9 au lait\"}\n", "network.wifi[0].psk: a WPA passphrase is printable ASCII"},
		{"network:\n  wifi:\n    - {ssid: lab, psk: short}\n", "network.wifi[0].psk: a WPA passphrase is 8 to 63 characters long, this one is 5"},
		{"network:\n  wifi:\n    - {ssid: lab}\n    - {ssid: lab, hidden: true}\n", `network.wifi[1].ssid: "lab" is listed twice`},
	} {
		_, _, err := Parse("t.yaml", []byte("apiVersion: cairn.dev/v1alpha1\nkind: Node\n"+c.doc))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want %q", c.doc, err, c.want)
		}
	}
	if _, warns, err := Parse("t.yaml", []byte("apiVersion: cairn.dev/v1alpha1\nkind: Node\nnetwork:\n  wifiCountry: GB\n  wifi:\n    - {ssid: lab, psk: '\"quoted\" #1', hidden: true}\n")); err != nil || len(warns) != 0 {
		t.Errorf("a good Wi-Fi config: %v %v", warns, err)
	}
}

func TestSchemaCoversFields(t *testing.T) {
	raw, err := Schema()
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Properties map[string]struct {
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"properties"`
		Required []string `json:"required"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"apiVersion", "kind", "hostname", "network", "time", "files", "sysctl", "modules", "cluster", "update", "repositories"} {
		if _, ok := s.Properties[f]; !ok {
			t.Errorf("schema lacks %s", f)
		}
	}
	if _, ok := s.Properties["cluster"].Properties["datastore"]; !ok {
		t.Errorf("schema lacks cluster.datastore")
	}
	if strings.Join(s.Required, ",") != "apiVersion,kind" {
		t.Errorf("required %v", s.Required)
	}
}
