package limited

import (
	"errors"
	"strings"
	"testing"
)

func TestReadAll(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int64
		fail bool
	}{{"", 0, false}, {"abc", 3, false}, {"abcd", 3, true}, {"a", 0, true}, {"a", -1, true}, {"abc", 1 << 62, false}} {
		got, err := ReadAll(strings.NewReader(tc.in), tc.max)
		if tc.fail != errors.Is(err, ErrTooLarge) || (!tc.fail && string(got) != tc.in) {
			t.Errorf("ReadAll(%q, %d) = %q, %v", tc.in, tc.max, got, err)
		}
	}
}
