// Package bundle writes an update bundle from a build's slot: the
// manifest that says what it is for, signed with the fleet's key, and the
// slot's files in the order the family installs them, so that a node
// installs from the stream. The format is boot/bundle's. The bundle is
// written to a temporary file and renamed into place when whole.
package bundle

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/cairn-os/cairn/boot/bundle"
	"github.com/cairn-os/cairn/boot/family"
	"github.com/cairn-os/cairn/internal/progress"
)

// ErrOutput is wrapped when the bundle file cannot be written.
var ErrOutput = errors.New("cannot write the bundle")

// Write writes a bundle of slot s to output; m says what it is for and
// gets the files. progress, if not nil, shows a bar.
func Write(s *family.Slot, m *bundle.Manifest, key ed25519.PrivateKey, output string, out io.Writer) error {
	home, err := family.Of(s.Family)
	if err != nil {
		return err
	}
	order, err := family.InstallOrder(home, s)
	if err != nil {
		return err
	}
	m.Family, m.Console, m.Args, m.Files = s.Family, s.Console, s.Args, nil
	for _, name := range order {
		e, _ := s.Files.Get(name)
		r, err := e.Open()
		if err != nil {
			return err
		}
		f, err := bundle.Describe(name, r)
		r.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		m.Files = append(m.Files, f)
	}
	tmp, err := os.CreateTemp(filepath.Dir(output), "."+filepath.Base(output)+".*")
	if err != nil {
		return fmt.Errorf("%w: %w (check that the folder of %s exists and is writable)", ErrOutput, err, output)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	var bar *progress.Bar
	if out != nil {
		bar = progress.New(out, "writing the bundle", s.Files.Size())
		defer bar.Done()
	}
	open := func(name string) (io.ReadCloser, error) {
		e, _ := s.Files.Get(name)
		r, err := e.Open()
		if err != nil || bar == nil {
			return r, err
		}
		return struct {
			io.Reader
			io.Closer
		}{bar.Reader(r), r}, nil
	}
	if err := bundle.Write(tmp, m, key, s.Epoch, open); err != nil {
		return err
	}
	if err := errors.Join(tmp.Sync(), tmp.Close()); err != nil {
		return fmt.Errorf("%w: %w", ErrOutput, err)
	}
	if err := os.Rename(tmp.Name(), output); err != nil {
		return fmt.Errorf("%w: %w", ErrOutput, err)
	}
	return nil
}
