package pid1

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDebugConsoleHidesSecrets reads files as the debug console's cat
// does: a secret folder's files are refused however the path reaches
// them, devices are refused, other files are shown.
func TestDebugConsoleHidesSecrets(t *testing.T) {
	dir := t.TempDir()
	secrets := filepath.Join(dir, "lib/cairn/server")
	os.MkdirAll(filepath.Join(secrets, "tls"), 0o700)
	os.WriteFile(filepath.Join(secrets, "tls/ca.key"), []byte("KEY"), 0o600)
	os.WriteFile(filepath.Join(dir, "motd"), []byte("hello"), 0o644)
	os.Symlink(filepath.Join(secrets, "tls"), filepath.Join(dir, "innocent"))
	saved := secretPlaces
	secretPlaces = []string{secrets}
	t.Cleanup(func() { secretPlaces = saved })

	for _, name := range []string{
		filepath.Join(secrets, "tls/ca.key"),
		filepath.Join(dir, "innocent/ca.key"),
		filepath.Join(dir, "lib/cairn/../cairn/server/tls/ca.key"),
		secrets,
		"/dev/null",
	} {
		data, err := readPublic(name)
		if err == nil || strings.Contains(string(data), "KEY") {
			t.Errorf("cat %s: %q, %v; want a refusal", name, data, err)
		}
	}
	if data, err := readPublic(filepath.Join(dir, "motd")); err != nil || string(data) != "hello" {
		t.Errorf("cat motd: %q, %v", data, err)
	}
}
