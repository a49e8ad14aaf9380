package supervise

import (
	"slices"
	"testing"
)

func TestExtraArgsOverrideDefaults(t *testing.T) {
	got := Flags(map[string]string{"v": "0", "profiling": "false"}, []string{"--v=4", "feature-gates=X=true"})
	want := []string{"--feature-gates=X=true", "--profiling=false", "--v=4"}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
