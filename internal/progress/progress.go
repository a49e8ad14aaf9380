// Package progress shows progress of long work: a bar that redraws in place
// when the output is a terminal, and a plain line at the end otherwise.
package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/term"
)

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Bar counts bytes of one piece of work.
type Bar struct {
	mu    sync.Mutex
	w     io.Writer
	label string
	total int64
	done  int64
	tty   bool
	last  time.Time
	start time.Time
}

// New starts a bar; total may be 0 when unknown.
func New(w io.Writer, label string, total int64) *Bar {
	return &Bar{w: w, label: label, total: total, tty: IsTerminal(w), start: time.Now()}
}

// Add records n more bytes.
func (b *Bar) Add(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done += n
	if b.tty && time.Since(b.last) > 100*time.Millisecond {
		b.last = time.Now()
		b.draw()
	}
}

func (b *Bar) draw() {
	if b.total > 0 {
		const width = 30
		fill := int(float64(width) * float64(b.done) / float64(b.total))
		fill = min(max(fill, 0), width)
		bar := make([]byte, width)
		for i := range bar {
			bar[i] = ' '
			if i < fill {
				bar[i] = '#'
			}
		}
		fmt.Fprintf(b.w, "\r%-40.40s [%s] %s/%s", b.label, bar, Size(b.done), Size(b.total))
	} else {
		fmt.Fprintf(b.w, "\r%-40.40s %s", b.label, Size(b.done))
	}
}

// Done ends the bar with a summary line.
func (b *Bar) Done() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tty {
		fmt.Fprint(b.w, "\r\033[K")
	}
	fmt.Fprintf(b.w, "%s: %s in %.1fs\n", b.label, Size(b.done), time.Since(b.start).Seconds())
}

// Reader counts what passes through r on the bar.
func (b *Bar) Reader(r io.Reader) io.Reader { return &reader{r: r, b: b} }

type reader struct {
	r io.Reader
	b *Bar
}

func (r *reader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.b.Add(int64(n))
	return n, err
}

// Size formats a byte count for people.
func Size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// WriterAt counts what is written through w on the bar. A nil bar counts
// nothing and returns w.
func (b *Bar) WriterAt(w io.WriterAt) io.WriterAt {
	if b == nil {
		return w
	}
	return &writerAt{w: w, b: b}
}

type writerAt struct {
	w io.WriterAt
	b *Bar
}

func (w *writerAt) WriteAt(p []byte, off int64) (int, error) {
	n, err := w.w.WriteAt(p, off)
	w.b.Add(int64(n))
	return n, err
}
