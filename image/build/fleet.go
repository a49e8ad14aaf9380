package build

import (
	"errors"
	"fmt"
	"slices"

	"github.com/cairn-os/cairn/internal/fleet"
)

// fleetInputs loads the fleet keys, when there are any, for what the image
// carries of them: the node API's CA certificate and the node's
// certificate and key, and the public key that signs bundles when the
// config lists no update.publicKeys. A bundle needs the signing key.
func (o *Options) fleetInputs(bundle string) error {
	dir, err := fleet.DefaultDir()
	if err != nil {
		return err
	}
	f, err := fleet.Load(dir)
	if errors.Is(err, fleet.ErrNoKeys) {
		if bundle != "" {
			return fmt.Errorf("%w: --bundle: %w", ErrInput, err)
		}
		o.Log.Info("no fleet keys, so this image takes no over-the-air updates; make them once with cairn keys generate", "dir", dir)
		return nil
	}
	if err != nil {
		return err
	}
	if u := o.Config.Update; bundle != "" && u != nil && len(u.PublicKeys) > 0 && !slices.Contains(u.PublicKeys, f.PublicKey()) {
		pos := o.Config.PosOf("update.publicKeys")
		return fmt.Errorf("%w: %s:%d:%d: update.publicKeys does not list the fleet's signing key %s (%s), so nodes would refuse this bundle; add it, or remove update.publicKeys to trust the fleet's key",
			ErrInput, o.configFile, pos.Line, pos.Col, f.PublicKey(), dir)
	}
	o.fleet = f
	o.FleetFiles = map[string][]byte{
		fleet.FileCA: f.CA.CertPEM, fleet.FileNode: f.NodeCert, fleet.FileNodeKey: f.NodeKey,
		fleet.FilePublicKey: []byte(f.PublicKey() + "\n"),
	}
	o.Log.Info("the image takes updates signed with the fleet's key and pushed with its admin certificate", "dir", dir, "key", f.PublicKey())
	return nil
}
