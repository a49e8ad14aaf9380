package join

import (
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Limits bound what the endpoint spends on its clients. A zero field
// takes DefaultLimits' value.
type Limits struct {
	ReadTimeout    time.Duration // a request, TLS handshake included
	WriteTimeout   time.Duration // from the request's headers to the end of the answer
	IdleTimeout    time.Duration // a kept-alive connection between requests
	MaxHeaderBytes int
	MaxBody        int64
	Conns          int        // connections at once; more wait to be accepted
	PerSource      rate.Limit // requests a second from one address (an IPv6 /64)
	PerSourceBurst int
	Logs           rate.Limit // refusal log lines a second
	LogBurst       int
}

// DefaultLimits let a few hundred agents join at once, through one NAT
// within a minute or two, and keep a flood of refusals to a few log lines
// a minute.
var DefaultLimits = Limits{
	ReadTimeout:    10 * time.Second,
	WriteTimeout:   30 * time.Second, // the password check goes through the API
	IdleTimeout:    10 * time.Second,
	MaxHeaderBytes: 8 << 10,
	MaxBody:        64 << 10,
	Conns:          64,
	PerSource:      rate.Every(2 * time.Second),
	PerSourceBurst: 10,
	Logs:           rate.Every(10 * time.Second),
	LogBurst:       20,
}

// orDefault is l with its zero fields taken from DefaultLimits.
func (l Limits) orDefault() Limits {
	d := DefaultLimits
	pick(&l.ReadTimeout, d.ReadTimeout)
	pick(&l.WriteTimeout, d.WriteTimeout)
	pick(&l.IdleTimeout, d.IdleTimeout)
	pick(&l.MaxHeaderBytes, d.MaxHeaderBytes)
	pick(&l.MaxBody, d.MaxBody)
	pick(&l.Conns, d.Conns)
	pick(&l.PerSource, d.PerSource)
	pick(&l.PerSourceBurst, d.PerSourceBurst)
	pick(&l.Logs, d.Logs)
	pick(&l.LogBurst, d.LogBurst)
	return l
}

func pick[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// maxSources is how many source addresses get a bucket of their own; while
// that many have used theirs recently, new ones share one.
const maxSources = 4096

// sources keeps a token bucket per source address.
type sources struct {
	mu       sync.Mutex
	limit    rate.Limit
	burst    int
	buckets  map[netip.Addr]*rate.Limiter
	overflow *rate.Limiter
}

func newSources(limit rate.Limit, burst int) *sources {
	return &sources{limit: limit, burst: burst, buckets: map[netip.Addr]*rate.Limiter{}, overflow: rate.NewLimiter(limit, burst)}
}

// take spends a token of src's bucket and returns 0, or returns how long
// src must wait for one.
func (ss *sources) take(src netip.Addr, now time.Time) time.Duration {
	r := ss.bucket(src, now).ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d
	}
	return 0
}

func (ss *sources) bucket(src netip.Addr, now time.Time) *rate.Limiter {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if b, ok := ss.buckets[src]; ok {
		return b
	}
	if len(ss.buckets) >= maxSources {
		// A full bucket is as good as a new one: forget it.
		for a, b := range ss.buckets {
			if b.TokensAt(now) >= float64(ss.burst) {
				delete(ss.buckets, a)
			}
		}
	}
	if len(ss.buckets) >= maxSources {
		return ss.overflow
	}
	b := rate.NewLimiter(ss.limit, ss.burst)
	ss.buckets[src] = b
	return b
}

// source is the address a request came from, an IPv6 one as its /64 (a
// host usually has all of one).
func source(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	a := ap.Addr().Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// refusals logs refusals through a token bucket, and with the next line
// it logs, how many it left out.
type refusals struct {
	lim     *rate.Limiter
	skipped atomic.Int64
}

// allow says whether to log a refusal now, and how many were left out
// since the last one logged.
func (rf *refusals) allow(now time.Time) (bool, int64) {
	if !rf.lim.AllowN(now, 1) {
		rf.skipped.Add(1)
		return false, 0
	}
	return true, rf.skipped.Swap(0)
}

// errorLog takes the lines http.Server logs (TLS handshakes that failed,
// mostly) as refusals.
type errorLog struct{ s *Server }

func (e errorLog) Write(p []byte) (int, error) {
	e.s.logRefusal("join endpoint: connection failed", "err", strings.TrimSpace(string(p)))
	return len(p), nil
}
