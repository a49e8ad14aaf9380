package qemu

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// A VM that keeps a bounded console still finds lines by their offsets
// from the first byte.
func TestKeepOutput(t *testing.T) {
	v := &VM{keep: 1000, done: make(chan struct{})}
	v.grow = sync.NewCond(&v.mu)
	w := (*consoleBuf)(v)
	total := 0
	for i := range 500 {
		line := fmt.Sprintf("line %03d\n", i)
		w.Write([]byte(line))
		total += len(line)
	}
	if n := len(v.Output()); n > 1000 || n < 500 {
		t.Errorf("kept %d bytes, want 500 to 1000", n)
	}
	at, err := v.WaitFor("line 499\n", 0, time.Second)
	if err != nil || at != total {
		t.Errorf("WaitFor: %d, %v; want %d", at, err, total)
	}
	if _, err := v.WaitFor("line 000", 0, 10*time.Millisecond); err == nil || !strings.Contains(err.Error(), "no ") {
		t.Errorf("a dropped line was found: %v", err)
	}
}
