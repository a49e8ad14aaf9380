package pid1

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// stuck is a device that takes nothing until released.
type stuck struct {
	release chan struct{}
	mu      sync.Mutex
	got     bytes.Buffer
}

func (s *stuck) Write(p []byte) (int, error) {
	<-s.release
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got.Write(p)
}

// TestConsoleNeverBlocks writes to a console that takes nothing: every
// write returns, what does not fit is dropped and counted, and once the
// console takes again the rest comes out in order with the count.
func TestConsoleNeverBlocks(t *testing.T) {
	dev := &stuck{release: make(chan struct{})}
	l := newLagging(dev, 100)
	done := make(chan struct{})
	go func() {
		for i := range 50 {
			l.Write([]byte(strings.Repeat(string(rune('a'+i%26)), 9) + "\n"))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("writes to a stuck console blocked")
	}
	close(dev.release)
	l.Flush(10 * time.Second)
	dev.mu.Lock()
	out := dev.got.String()
	dev.mu.Unlock()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	// The first line was taken by the device before it stuck, ten more
	// fit in the queue; the rest were dropped and counted.
	if len(lines) < 11 || !strings.HasPrefix(lines[0], "aaaaaaaaa") || !strings.Contains(out, "writes dropped") {
		t.Errorf("console got:\n%s", out)
	}
	if !strings.Contains(out, "cairn: console: 39 writes dropped") && !strings.Contains(out, "cairn: console: 40 writes dropped") {
		t.Errorf("drop count missing or wrong:\n%s", out)
	}
}
