package update

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/cairn-os/cairn/boot/bundle"
	"github.com/cairn-os/cairn/internal/retry"
)

// Poll checks the channel at channelURL about every `every` (with a
// random tenth more or less, so a fleet does not come at once) and
// installs the bundle it offers when that is newer than what the node
// runs, for this node, and not held (a build whose trial failed here, or
// that a rollback left). A build that fails to install is tried again
// after a growing wait, up to a day.
func (n *Node) Poll(ctx context.Context, channelURL string, every time.Duration) {
	base, err := url.Parse(channelURL)
	if err != nil {
		n.Log.Error("update.url", "err", err)
		return
	}
	var failed struct {
		build   int64
		times   int
		retryAt time.Time
	}
	wait := time.Duration(rand.Int64N(int64(min(every, 2*time.Minute)))) + 10*time.Second
	for retry.Sleep(ctx, wait) == nil {
		wait = every + time.Duration(rand.Int64N(int64(every/5))) - every/10
		if n.ready() != nil {
			continue // rebooting, on trial, or not started: next time
		}
		ix, err := n.fetchChannel(ctx, base)
		if err != nil {
			n.Log.Warn("update channel", "url", base.Redacted(), "err", err)
			continue
		}
		if !n.wants(ix) || ix.Build == failed.build && time.Now().Before(failed.retryAt) {
			continue
		}
		bundleURL, _ := url.Parse(ix.Bundle)
		n.Log.Info("the update channel offers a newer system; installing it", "version", ix.Version, "build", ix.Build, "bundle", bundleURL.Redacted())
		body := &resumer{ctx: ctx, url: bundleURL, size: ix.Size, log: n.Log}
		_, err = n.Install(ctx, body, false, nil, ix.Build)
		body.close()
		if err != nil {
			if failed.build != ix.Build {
				failed.build, failed.times = ix.Build, 0
			}
			failed.times++
			failed.retryAt = time.Now().Add(min(every<<min(failed.times, 10), 24*time.Hour))
			n.Log.Error("the update from the channel was not installed", "err", err, "again", failed.retryAt.Format(time.RFC3339))
		}
	}
}

// wants says whether the node installs what the channel offers.
func (n *Node) wants(ix *bundle.Index) bool {
	if ix.Board != n.Info.Board || ix.Cluster != n.Cluster || ix.Build <= n.Info.Epoch {
		return false
	}
	st, err := loadState(StateFile, n.Info)
	if err != nil {
		n.Log.Warn("update state", "err", err)
		return false
	}
	return ix.Build != st.Held
}

var pullClient = &http.Client{
	Timeout: 30 * time.Second, // the channel file; bundles use their own
}

func (n *Node) fetchChannel(ctx context.Context, base *url.URL) (*bundle.Index, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := pullClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s", resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, bundle.MaxChannel+1))
	if err != nil {
		return nil, err
	}
	// The bundle's address is relative to where the channel was found,
	// after any redirect.
	return bundle.ParseChannel(data, n.Keys, resp.Request.URL)
}

// resumer reads a bundle over HTTP and, when the connection breaks or
// stalls, asks again for the rest (a Range request, If-Range the version
// it started with) where it stopped. It reads at most size bytes.
type resumer struct {
	ctx       context.Context
	url       *url.URL
	size, off int64
	log       *slog.Logger

	body      io.ReadCloser
	cancel    context.CancelFunc
	stall     *time.Timer
	validator string // the first answer's ETag or Last-Modified
	tries     int    // since the last progress
	b         retry.Backoff
}

const (
	stallTimeout = time.Minute
	maxTries     = 20
)

var errNoResume = errors.New("the bundle's server cannot resume a download (it ignores Range requests)")

// bundleClient follows redirects and sends a URL's user and password, with
// no overall time limit: a stall timer cancels a request that stops.
var bundleClient = &http.Client{}

func (r *resumer) Read(p []byte) (int, error) {
	if r.off >= r.size {
		return 0, io.EOF
	}
	if left := r.size - r.off; int64(len(p)) > left {
		p = p[:left]
	}
	for {
		if r.body == nil {
			if err := r.open(); err != nil {
				if err := r.again(err); err != nil {
					return 0, err
				}
				continue
			}
		}
		n, err := r.body.Read(p)
		r.off += int64(n)
		if n > 0 {
			r.stall.Reset(stallTimeout)
			r.tries = 0
			r.b.Reset()
		}
		if err == nil || err == io.EOF && r.off == r.size {
			return n, err
		}
		// Broken, stalled or short: resume from r.off.
		r.close()
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		if err := r.again(err); err != nil || n > 0 {
			return n, err
		}
	}
}

// again waits before the next try, or says why there is none.
func (r *resumer) again(err error) error {
	r.tries++
	if errors.Is(err, errNoResume) || r.tries > maxTries || r.ctx.Err() != nil {
		return fmt.Errorf("downloading %s: %w", r.url.Redacted(), err)
	}
	r.log.Warn("the bundle's download broke off; resuming", "at", r.off, "of", r.size, "err", err)
	return r.b.Wait(r.ctx)
}

// open asks for the bundle from r.off on.
func (r *resumer) open() error {
	ctx, cancel := context.WithCancel(r.ctx)
	r.stall = time.AfterFunc(stallTimeout, cancel) // no answer at all counts too
	fail := func(err error) error {
		r.stall.Stop()
		cancel()
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url.String(), nil)
	if err != nil {
		return fail(err)
	}
	if r.off > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(r.off, 10)+"-")
		if r.validator != "" {
			req.Header.Set("If-Range", r.validator)
		}
	}
	resp, err := bundleClient.Do(req)
	if err != nil {
		return fail(err)
	}
	ok := resp.StatusCode == http.StatusOK && r.off == 0
	if resp.StatusCode == http.StatusPartialContent && r.off > 0 {
		var start int64
		_, serr := fmt.Sscanf(resp.Header.Get("Content-Range"), "bytes %d-", &start)
		ok = serr == nil && start == r.off
	}
	if !ok {
		resp.Body.Close()
		switch {
		case r.off > 0 && resp.StatusCode == http.StatusOK && r.validator != "":
			return fail(fmt.Errorf("%w: the bundle changed on the server during the download", errNoResume))
		case r.off > 0 && resp.StatusCode == http.StatusOK:
			return fail(errNoResume)
		}
		return fail(fmt.Errorf("%s (%s)", resp.Status, resp.Header.Get("Content-Range")))
	}
	if r.off == 0 {
		if r.validator = resp.Header.Get("ETag"); r.validator == "" {
			r.validator = resp.Header.Get("Last-Modified")
		}
	}
	r.body, r.cancel = resp.Body, cancel
	return nil
}

func (r *resumer) close() {
	if r.body != nil {
		r.stall.Stop()
		r.body.Close()
		r.cancel()
		r.body = nil
	}
}
