package oci

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzInspect reads arbitrary bytes as an image archive. Inspect writes
// nothing, so the check is that it returns, without panicking; the caps
// are lowered so that no input is read for long.
func FuzzInspect(f *testing.F) {
	d, all, n := maxDocument, maxDocuments, maxMembers
	f.Cleanup(func() { maxDocument, maxDocuments, maxMembers = d, all, n })
	maxDocument, maxDocuments, maxMembers = 1<<16, 1<<18, 256
	var image bytes.Buffer
	if err := Write(&image, testImage()); err != nil {
		f.Fatal(err)
	}
	f.Add(image.Bytes())
	for _, pairs := range [][]string{unplaced, {
		"manifest.json", `[{"Config":"c.json","RepoTags":["a:1"],"Layers":["l/layer.tar"]}]`,
		"c.json", `{"architecture":"arm64"}`, "l/layer.tar", "",
	}} {
		data, err := os.ReadFile(archiveOf(f, pairs...))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	file := filepath.Join(f.TempDir(), "a.tar") // a worker runs one input at a time
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(file, data, 0o644); err != nil {
			t.Fatal(err)
		}
		Inspect(file) // an error is an answer too; a panic or a hang is not
	})
}
