package configs

import (
	"fmt"
	"net/netip"
	"strconv"

	"github.com/invopop/jsonschema"
	"gopkg.in/yaml.v3"
)

// Prefix is an address with its prefix length (192.168.1.10/24).
type Prefix struct{ netip.Prefix }

// UnmarshalYAML parses CIDR notation.
func (p *Prefix) UnmarshalYAML(n *yaml.Node) error {
	v, err := netip.ParsePrefix(n.Value)
	if err != nil {
		return fmt.Errorf("%q is not an address in CIDR form such as 192.168.1.10/24", n.Value)
	}
	p.Prefix = v
	return nil
}

// MarshalYAML writes CIDR notation.
func (p Prefix) MarshalYAML() (any, error) { return p.String(), nil }

// IsZero says whether no prefix is set (for omitempty).
func (p Prefix) IsZero() bool { return !p.IsValid() }

// JSONSchema describes the YAML form.
func (Prefix) JSONSchema() *jsonschema.Schema {
	return &jsonschema.Schema{Type: "string", Pattern: `^[0-9A-Fa-f:.]+/[0-9]{1,3}$`}
}

// IP is a single IPv4 or IPv6 address.
type IP struct{ netip.Addr }

// UnmarshalYAML parses an address.
func (a *IP) UnmarshalYAML(n *yaml.Node) error {
	v, err := netip.ParseAddr(n.Value)
	if err != nil {
		return fmt.Errorf("%q is not an IP address", n.Value)
	}
	a.Addr = v
	return nil
}

// MarshalYAML writes the address.
func (a IP) MarshalYAML() (any, error) { return a.String(), nil }

// IsZero says whether no address is set (for omitempty).
func (a IP) IsZero() bool { return !a.IsValid() }

// JSONSchema describes the YAML form.
func (IP) JSONSchema() *jsonschema.Schema {
	return &jsonschema.Schema{Type: "string", AnyOf: []*jsonschema.Schema{{Format: "ipv4"}, {Format: "ipv6"}}}
}

// FileMode is a permission set written in octal ("0644").
type FileMode uint32

// UnmarshalYAML parses an octal mode. YAML 1.1 readers turn a bare 0644 into
// 420, so a string is the portable form; a bare octal-looking number is read
// as octal too.
func (m *FileMode) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected an octal mode such as \"0644\"")
	}
	v, err := strconv.ParseUint(n.Value, 8, 32)
	if err != nil || v > 0o7777 {
		return fmt.Errorf("%q is not an octal mode between 0000 and 7777 (write it as \"0644\")", n.Value)
	}
	*m = FileMode(v)
	return nil
}

// MarshalYAML writes the mode in octal.
func (m FileMode) MarshalYAML() (any, error) { return fmt.Sprintf("%04o", uint32(m)), nil }

// JSONSchema describes the YAML form.
func (FileMode) JSONSchema() *jsonschema.Schema {
	return &jsonschema.Schema{Type: "string", Pattern: `^0?[0-7]{3,4}$`}
}
