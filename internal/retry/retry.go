// Package retry is how Cairn waits between attempts at something that can
// fail for a while (a DHCP lease, a join, an API call, a crashed
// process): a wait that doubles from Min up to Max and starts over after a
// success. Loops that retry a failed attempt go through it, so that none
// spins and none waits without end; a wait for something to appear (a disk,
// a partition, a socket) polls at a short fixed interval up to a deadline
// instead.
package retry

import (
	"context"
	"time"
)

// Backoff is a growing, capped wait. The zero value waits 1 s, doubling
// up to a minute.
type Backoff struct {
	Min, Max time.Duration
	next     time.Duration
}

// Next returns the wait before the next attempt and doubles the one after,
// up to Max.
func (b *Backoff) Next() time.Duration {
	lo, hi := b.Min, b.Max
	if lo <= 0 {
		lo = time.Second
	}
	if hi < lo {
		hi = max(lo, time.Minute)
	}
	if b.next < lo {
		b.next = lo
	}
	d := b.next
	b.next = min(2*b.next, hi)
	return d
}

// Reset starts the waits over at Min, after a success.
func (b *Backoff) Reset() { b.next = 0 }

// Wait sleeps for Next, or until ctx ends (then it returns ctx.Err()).
func (b *Backoff) Wait(ctx context.Context) error {
	return Sleep(ctx, b.Next())
}

// Sleep waits for d, or until ctx ends (then it returns ctx.Err()).
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Until calls try until it succeeds or ctx ends, waiting with b between
// failures; failed, if not nil, is told each error and the wait after it.
// It returns nil on success, else ctx's error.
func Until(ctx context.Context, b Backoff, try func(context.Context) error, failed func(err error, wait time.Duration)) error {
	for {
		err := try(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		wait := b.Next()
		if failed != nil {
			failed(err, wait)
		}
		if err := Sleep(ctx, wait); err != nil {
			return err
		}
	}
}
