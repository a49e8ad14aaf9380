package configs

import "embed"

// Examples holds the commented example configs; examples/default.yaml is
// what `cairn build` uses when no --config is given.
//
//go:embed examples/*.yaml
var Examples embed.FS

// DefaultName names the built-in default config in messages.
const DefaultName = "built-in default (configs/examples/default.yaml)"

// Default returns the built-in default config's bytes.
func Default() []byte {
	b, err := Examples.ReadFile("examples/default.yaml")
	if err != nil {
		panic(err)
	}
	return b
}
