package agent

import "testing"

func TestLabelValue(t *testing.T) {
	for in, want := range map[string]string{
		"4a13e07":                "4a13e07",
		"v1.2.3+dirty":           "v1.2.3_dirty",
		"-x-":                    "x",
		"":                       "unknown",
		"é":                      "unknown",
		string(make([]byte, 70)): "unknown",
	} {
		if got := LabelValue(in); got != want {
			t.Errorf("LabelValue(%q) = %q, want %q", in, got, want)
		}
	}
	long := LabelValue("a234567890123456789012345678901234567890123456789012345678901234567890")
	if len(long) != 63 {
		t.Errorf("a long version gives %d characters", len(long))
	}
}
