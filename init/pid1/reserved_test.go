package pid1

import (
	"strings"
	"testing"

	"github.com/cairn-os/cairn/boot"
	"github.com/cairn-os/cairn/configs"
	"github.com/cairn-os/cairn/init/clock"
)

// TestFilesCannotTouchInitState checks configs.Reserved against the paths
// init and its services really write: a files[] entry naming one of them
// must not validate.
func TestFilesCannotTouchInitState(t *testing.T) {
	paths := []string{boot.CardConfigCopy, boot.HealthFile, clock.SavedPath, "/run/cairn/etc/group"}
	for p := range etcFiles("node") {
		if p != "/etc/hosts" && p != "/etc/nsswitch.conf" {
			paths = append(paths, p)
		}
	}
	for _, p := range paths {
		doc := "apiVersion: cairn.dev/v1alpha1\nkind: Node\nfiles:\n  - path: " + p + "\n    content: x\n"
		_, _, err := configs.Parse("t.yaml", []byte(doc))
		if err == nil || !strings.Contains(err.Error(), "files[0].path: \""+p+"\"") {
			t.Errorf("files[] may write %s: %v", p, err)
		}
	}
}
