package pid1

import (
	"os/exec"
	"strings"
	"testing"
)

// TestInitLinksNoClusterCode keeps the CA and Kubernetes code out of init:
// a cluster package that init links grows every image's initramfs and
// puts code that init does not need in PID 1.
func TestInitLinksNoClusterCode(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool to list init's packages")
	}
	out, err := exec.Command(goTool, "list", "-deps", "github.com/cairn-os/cairn/cmd/init").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "github.com/cairn-os/cairn/cluster/") {
			t.Errorf("init links %s; keep cluster code out of init (move what init needs to a leaf package)", pkg)
		}
	}
}
