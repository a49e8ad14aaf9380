package join

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/cairn-os/cairn/internal/retry"
)

// Backoff is the wait between failed joins: 5 s, doubling up to 30 s. An
// agent that boots before its server (power back in a rack) joins within
// 30 s of the server's coming up, and a refused one asks twice a minute,
// which the join endpoint's limits absorb.
var Backoff = retry.Backoff{Min: 5 * time.Second, Max: 30 * time.Second}

// CheckEvery bounds a wait for the renewal time, so that a clock set
// after boot (by NTP, on a board without one) is taken into account.
const CheckEvery = time.Hour

// Renewal keeps a running node's certificates fresh: once the first of
// them is half-way through its life, it joins again, retrying with
// Backoff until a join succeeds, and replaces them in Creds.
type Renewal struct {
	Creds Creds
	// Join joins once and returns the certificates and their keys.
	Join func(context.Context) (*Response, *Keys, error)
	Now  func() time.Time
	// Sleep waits or returns ctx's error; retry.Sleep unless set.
	Sleep   func(context.Context, time.Duration) error
	Backoff retry.Backoff // Backoff unless set
	Log     *slog.Logger
}

// Run renews the certificates whenever they are due, until ctx ends; it
// returns ctx's error.
func (r *Renewal) Run(ctx context.Context) error {
	sleep := r.Sleep
	if sleep == nil {
		sleep = retry.Sleep
	}
	for {
		renew, expires, err := r.Creds.RenewAt()
		if err != nil {
			r.Log.Warn("the node's certificates cannot be read; joining again for new ones", "err", err)
		}
		if wait := renew.Sub(r.Now()); err == nil && wait > 0 {
			if err := sleep(ctx, min(wait, CheckEvery)); err != nil {
				return err
			}
			continue
		}
		if err := r.renew(ctx, expires); err != nil {
			return err
		}
	}
}

// renew joins until a join succeeds and keeps its certificates.
func (r *Renewal) renew(ctx context.Context, expires time.Time) error {
	b := r.Backoff
	if b == (retry.Backoff{}) {
		b = Backoff
	}
	err := retry.Until(ctx, b, func(ctx context.Context) error {
		resp, keys, err := r.Join(ctx)
		if err != nil {
			return err
		}
		if err := r.Creds.Write(resp, keys); err != nil {
			return err
		}
		return r.fresh()
	}, func(err error, wait time.Duration) {
		r.Log.Error("renewing the node's certificates failed; retrying", "err", err, "in", wait, "expires", expires.Format(time.RFC3339))
	})
	if err == nil {
		r.Log.Info("renewed the node's certificates; the kubelet and kube-proxy take them up within 5 min", "dir", r.Creds.Dir)
	}
	return err
}

// fresh checks that the certificates just kept are not due already, which
// would make Run join again at once, and again.
func (r *Renewal) fresh() error {
	renew, _, err := r.Creds.RenewAt()
	if err != nil {
		return err
	}
	if !renew.After(r.Now()) {
		return fmt.Errorf("the new certificates are due for renewal already, at %s; set the clocks of this node and the server right (NTP)", renew.UTC().Format(time.RFC3339))
	}
	return nil
}
