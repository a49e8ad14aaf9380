package service

import (
	"bufio"
	"errors"
	"io"
	"os"
	"path/filepath"
	"time"
)

// copyLines copies r to out line by line (a line longer than 64 KiB is cut
// into pieces), with the time before each when stamp is set, and gives
// each line to line.
func copyLines(r io.Reader, out io.Writer, stamp bool, line func(string)) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		b, err := br.ReadSlice('\n')
		if len(b) > 0 {
			text := string(b[:len(b)-trailingNewline(b)])
			if stamp {
				io.WriteString(out, time.Now().UTC().Format(time.RFC3339)+" ")
			}
			io.WriteString(out, text+"\n")
			line(text)
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			io.Copy(io.Discard, r)
			return
		}
	}
}

func trailingNewline(b []byte) int {
	if b[len(b)-1] == '\n' {
		return 1
	}
	return 0
}

// Rotating appends to the file at Path and moves it to Path.1 (replacing
// the one before) when it would pass Max bytes (default 20 MiB), so a log
// never holds more than twice Max on a small card. With no Path it
// discards what it is given.
type Rotating struct {
	Path string
	Max  int64
	f    *os.File
	size int64
}

func (r *Rotating) Write(p []byte) (int, error) {
	if r.Path == "" {
		return len(p), nil
	}
	limit := r.Max
	if limit <= 0 {
		limit = 20 << 20
	}
	if r.f == nil || r.size+int64(len(p)) > limit {
		if err := r.open(r.f != nil); err != nil {
			return 0, err
		}
	}
	n, err := r.f.Write(p)
	r.size += int64(n)
	return n, err
}

// open opens the file for appending, first moving the full one aside.
func (r *Rotating) open(rotate bool) error {
	if rotate {
		r.f.Close()
		r.f = nil
		os.Rename(r.Path, r.Path+".1")
	}
	if err := os.MkdirAll(filepath.Dir(r.Path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(r.Path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	r.f, r.size = f, st.Size()
	return nil
}

// Close closes the file.
func (r *Rotating) Close() error {
	if r.f == nil {
		return nil
	}
	return r.f.Close()
}
