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
// runs, for this node, and not a build whose trial failed here before.
func (n *Node) Poll(ctx context.Context, channelURL string, every time.Duration) {
	base, err := url.Parse(channelURL)
	if err != nil {
		n.Log.Error("update.url", "err", err)
		return
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
		if !n.wants(ix) {
			continue
		}
		n.Log.Info("the update channel offers a newer system; installing it", "version", ix.Version, "build", ix.Build, "bundle", ix.Bundle)
		body := &resumer{ctx: ctx, url: ix.Bundle, size: ix.Size, log: n.Log}
		_, err = n.Install(ctx, body, false, nil)
		body.close()
		if err != nil {
			n.Log.Error("the update from the channel was not installed", "err", err)
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
		return false
	}
	if ix.Build == st.Failed {
		n.Log.Debug("the channel offers a build whose trial failed here; waiting for a newer one", "build", ix.Build)
		return false
	}
	return true
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
	return bundle.ParseChannel(data, n.Keys, base)
}

// resumer reads a bundle over HTTP and, when the connection breaks or
// stalls, asks again for the rest (a Range request) where it stopped. It
// reads at most size bytes.
type resumer struct {
	ctx       context.Context
	url       string
	size, off int64
	log       *slog.Logger

	body   io.ReadCloser
	cancel context.CancelFunc
	stall  *time.Timer
	tries  int
	b      retry.Backoff
}

var errNoResume = errors.New("the bundle's server cannot resume a download (it ignores Range requests)")

const (
	stallTimeout = time.Minute
	maxResumes   = 20
)

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
	if errors.Is(err, errNoResume) {
		return err
	}
	if r.tries > maxResumes || r.ctx.Err() != nil {
		return fmt.Errorf("downloading %s: %w (tried %d times)", r.url, err, r.tries)
	}
	r.log.Warn("the bundle's download broke off; resuming", "at", r.off, "of", r.size, "err", err)
	return r.b.Wait(r.ctx)
}

// open asks for the bundle from r.off on.
func (r *resumer) open() error {
	ctx, cancel := context.WithCancel(r.ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		cancel()
		return err
	}
	if r.off > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(r.off, 10)+"-")
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		cancel()
		return fmt.Errorf("downloading %s: %w", r.url, err)
	}
	want := http.StatusOK
	if r.off > 0 {
		want = http.StatusPartialContent
	}
	if resp.StatusCode != want {
		resp.Body.Close()
		cancel()
		if r.off > 0 && resp.StatusCode == http.StatusOK {
			return errNoResume
		}
		return fmt.Errorf("downloading %s: %s", r.url, resp.Status)
	}
	r.body, r.cancel = resp.Body, cancel
	r.stall = time.AfterFunc(stallTimeout, cancel)
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
