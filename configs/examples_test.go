package configs_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-os/cairn/configs"
)

func TestExamplesLoad(t *testing.T) {
	files, err := filepath.Glob("examples/*.yaml")
	if err != nil || len(files) < 4 {
		t.Fatalf("want at least 4 examples, got %d (%v)", len(files), err)
	}
	for _, f := range files {
		c, warns, err := configs.Load(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		for _, w := range warns {
			if !strings.Contains(w.Msg, "not used yet") {
				t.Errorf("%s: unexpected warning %v", f, w)
			}
		}
		if c.Kind != configs.Kind {
			t.Errorf("%s: kind %q", f, c.Kind)
		}
	}
}

func TestStaticExampleValues(t *testing.T) {
	c, _, err := configs.Load("examples/static.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ifc := c.Network.Interfaces[0]
	if got := ifc.Addresses[0].String(); got != "10.0.2.15/24" {
		t.Errorf("address %s", got)
	}
	if got := ifc.Gateway4.String(); got != "10.0.2.2" {
		t.Errorf("gateway %s", got)
	}
	if c.Files[1].Mode != 0o600 {
		t.Errorf("mode %o", c.Files[1].Mode)
	}
}

func TestReferenceInREADME(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	ref := configs.Reference()
	if !strings.Contains(string(readme), ref) {
		t.Errorf("README.md's config reference is out of date; regenerate it with `go run ./cmd/cairn config reference` and paste it in:\n%s", ref)
	}
}

// The built-in default is what make run boots: a one-node cluster.
func TestDefaultIsAOneNodeServer(t *testing.T) {
	c, _, err := configs.Parse(configs.DefaultName, configs.Default())
	if err != nil {
		t.Fatal(err)
	}
	if c.Cluster == nil || c.Cluster.Role != "server" || c.Cluster.Server != "" {
		t.Errorf("the built-in default's cluster: %+v; want a server of its own", c.Cluster)
	}
}
