package pid1

import (
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"
)

// lagging is a writer that never makes its callers wait for a slow device
// (a serial console takes about 11 KB/s at 115200 baud): what is written
// is queued, up to max bytes, and one goroutine copies the queue out. What
// does not fit is dropped and counted, and a line says how much once the
// device catches up. So a flood of log lines cannot block init, nor
// cairnd's writers behind it.
type lagging struct {
	mu      sync.Mutex
	out     io.Writer
	max     int
	queue   [][]byte
	queued  int
	dropped int // lines
	wake    chan struct{}
	idle    *sync.Cond
	busy    bool
}

func newLagging(out io.Writer, max int) *lagging {
	l := &lagging{out: out, max: max, wake: make(chan struct{}, 1)}
	l.idle = sync.NewCond(&l.mu)
	go l.copy()
	return l
}

// Write queues p whole, or drops it whole; it never blocks on the device.
func (l *lagging) Write(p []byte) (int, error) {
	l.mu.Lock()
	if l.queued+len(p) > l.max {
		l.dropped++
	} else {
		l.queue = append(l.queue, append([]byte(nil), p...))
		l.queued += len(p)
	}
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (l *lagging) copy() {
	for range l.wake {
		for {
			l.mu.Lock()
			if len(l.queue) == 0 && l.dropped > 0 {
				msg := fmt.Appendf(nil, "cairn: console: %d writes dropped: more was logged than the console can show; the log files on /var/log have it all\n", l.dropped)
				l.queue, l.queued, l.dropped = append(l.queue, msg), l.queued+len(msg), 0
			}
			if len(l.queue) == 0 {
				l.busy = false
				l.idle.Broadcast()
				l.mu.Unlock()
				break
			}
			b := l.queue[0]
			l.queue = l.queue[1:]
			l.queued -= len(b)
			l.busy = true
			l.mu.Unlock()
			l.out.Write(b)
		}
	}
}

// Flush waits until the queue is out, or for at most d: before a reboot.
func (l *lagging) Flush(d time.Duration) {
	done := make(chan struct{})
	go func() {
		l.mu.Lock()
		for len(l.queue) > 0 || l.busy {
			l.idle.Wait()
		}
		l.mu.Unlock()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d):
	}
}

var (
	consoleOnce sync.Once
	theConsole  *lagging
)

// console is the system console, through one queue of 1 MiB for all of
// init's writers. A fresh open survives a closed fd 1.
func console() *lagging {
	consoleOnce.Do(func() {
		var out io.Writer = os.Stdout
		if f, err := os.OpenFile("/dev/console", os.O_WRONLY|syscall.O_NOCTTY, 0); err == nil {
			out = f
		}
		theConsole = newLagging(out, 1<<20)
	})
	return theConsole
}
