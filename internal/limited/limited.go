// Package limited reads a whole stream into memory only up to a stated
// size, so input the build does not control (an archive member, an HTTP
// body) cannot make it take all the memory there is. It reads; it does not
// decide what a sane limit is: each caller states its own.
package limited

import (
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/cairn-os/cairn/internal/progress"
)

// ErrTooLarge is wrapped when a stream holds more than its limit.
var ErrTooLarge = errors.New("too large")

// ReadAll reads r to its end, or fails with ErrTooLarge as soon as it has
// seen more than limit bytes; it never holds more than limit+1 of them.
func ReadAll(r io.Reader, limit int64) ([]byte, error) {
	limit = min(math.MaxInt64-1, max(0, limit))
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w (over %s)", ErrTooLarge, progress.Size(limit))
	}
	return data, nil
}
