// Package flaky helps tests play a network that breaks: an HTTP response
// that stops part-way, as a dropped link does.
package flaky

import "net/http"

// Cut wraps w so that the response breaks off, the connection dropped,
// after n bytes of body.
func Cut(w http.ResponseWriter, n int) http.ResponseWriter {
	return &cut{ResponseWriter: w, left: n}
}

type cut struct {
	http.ResponseWriter
	left int
}

func (c *cut) Write(p []byte) (int, error) {
	if len(p) >= c.left {
		c.ResponseWriter.Write(p[:c.left])
		c.ResponseWriter.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // net/http drops the connection
	}
	c.left -= len(p)
	return c.ResponseWriter.Write(p)
}
