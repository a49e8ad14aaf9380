package configs

import (
	"errors"
	"path/filepath"
	"testing"
)

// FuzzParse feeds the decoder and Validate arbitrary documents, seeded
// with the examples: none may panic, fail with an error outside
// ErrInvalid, print an error of unbounded length, or allocate more than a
// config of its size could need.
func FuzzParse(f *testing.F) {
	seeds, err := filepath.Glob("examples/*.yaml")
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no examples to seed from: %v", err)
	}
	for _, s := range seeds {
		data, err := ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	base, _, err := Parse("node.yaml", Default())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var errs [2]error
		bytes := allocated(func() {
			_, _, errs[0] = Parse("f.yaml", data)
			_, _, errs[1] = Layer(base, "cairn.yaml", data)
		})
		if limit := uint64(64<<20 + 400*len(data)); bytes > limit {
			t.Errorf("a %d-byte document allocated %d MiB", len(data), bytes>>20)
		}
		for _, err := range errs {
			if err == nil {
				continue
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error outside ErrInvalid: %v", err)
			}
			if n := len(err.Error()); n > (maxProblems+1)*(maxMsgBytes+maxPathBytes+64) {
				t.Errorf("error text of %d bytes", n)
			}
		}
	})
}
