package update

import (
	"io"
	"sync"
	"time"
)

// aheadPiece is what readAhead reads at a time, and holds twice.
const aheadPiece = 4 << 20

// readAhead reads a bundle's file beside the one who writes it: the next
// bytes come over the network and are hashed while the last ones go to
// the storage, which a write with O_DIRECT waits for. It counts the bytes
// and the time the writer waits for them. Close stops it and waits for a
// read under way: the bundle is not read once Close returns.
type readAhead struct {
	ws   *writeStats
	full chan piece  // read, in order
	free chan []byte // buffers to read into
	stop chan struct{}
	done chan struct{}
	once sync.Once

	cur []byte // what is left of the piece being handed out
	buf []byte // that piece's buffer, to give back
	err error  // what ended the file, once cur is handed out
}

type piece struct {
	b   []byte
	err error
}

// newReadAhead reads r, a file of size bytes, ahead: its buffers are no
// larger than the file (a dtb or config.txt needs no 4 MiB).
func newReadAhead(r io.Reader, size int64, ws *writeStats) *readAhead {
	ra := &readAhead{ws: ws, full: make(chan piece, 2), free: make(chan []byte, 2),
		stop: make(chan struct{}), done: make(chan struct{})}
	for range 2 {
		ra.free <- make([]byte, min(aheadPiece, max(size, 4096)))
	}
	go ra.fill(r)
	return ra
}

// fill reads r into free buffers until it ends or fails, or Close. With two
// buffers, at most two pieces wait in full: its sends never block.
func (ra *readAhead) fill(r io.Reader) {
	defer close(ra.done)
	for {
		var buf []byte
		select {
		case <-ra.stop:
			return
		case buf = <-ra.free:
		}
		n := 0
		var err error
		for n < len(buf) && err == nil {
			// A writer that failed closes at once: no more of the
			// bundle's file than the read under way.
			select {
			case <-ra.stop:
				return
			default:
			}
			var m int
			m, err = r.Read(buf[n:])
			n += m
		}
		ra.full <- piece{buf[:n], err}
		if err != nil {
			return
		}
	}
}

func (ra *readAhead) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if err := ra.next(); err != nil {
		return 0, err
	}
	n := copy(p, ra.cur)
	ra.cur = ra.cur[n:]
	return n, nil
}

// WriteTo hands w the pieces whole, as they were read.
func (ra *readAhead) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if err := ra.next(); err == io.EOF {
			return total, nil
		} else if err != nil {
			return total, err
		}
		n, err := w.Write(ra.cur)
		total += int64(n)
		ra.cur = ra.cur[n:]
		if err != nil {
			return total, err
		}
	}
}

// next makes cur the next bytes, waiting for them if need be, or says
// what ended the file.
func (ra *readAhead) next() error {
	for len(ra.cur) == 0 {
		if ra.buf != nil {
			ra.free <- ra.buf[:cap(ra.buf)]
			ra.buf = nil
		}
		if ra.err != nil {
			return ra.err
		}
		start := time.Now()
		pc := <-ra.full
		ra.ws.waiting += time.Since(start)
		ra.ws.bytes += int64(len(pc.b))
		ra.cur, ra.buf, ra.err = pc.b, pc.b, pc.err
	}
	return nil
}

func (ra *readAhead) Close() error {
	ra.once.Do(func() { close(ra.stop) })
	<-ra.done
	return nil
}
