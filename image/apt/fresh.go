package apt

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ErrStale is wrapped when a validly signed release is not the suite's
// current one: expired, for another suite, undated, or older than one seen
// before. A mirror replaying old metadata would serve such a release, to
// hold back security fixes.
var ErrStale = errors.New("repository release is not current")

// fresh checks that a verified release is the suite's current one, and
// remembers its Date for the next build. Offline, the release is the one
// the cache kept, so nothing was replayed: Valid-Until is not checked
// (builds from the cache keep working) and nothing is written.
func (c *Client) fresh(u, suite string, r *Release) error {
	if err := r.forSuite(suite); err != nil {
		return fmt.Errorf("%s: %w", u, err)
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	if t := r.ValidUntil; !c.Offline && !t.IsZero() && now().After(t) {
		return fmt.Errorf("%s: %w: it expired on %s (Valid-Until), so the mirror serves old metadata; use an up-to-date mirror, or set the build host's clock right", u, ErrStale, t.Format(time.DateOnly))
	}
	if r.Date.IsZero() {
		return fmt.Errorf("%s: %w: it has no Date, so an older release replayed in its place could not be told apart; use an archive that dates its releases", u, ErrStale)
	}
	file := filepath.Join(c.Cache, "release-dates", escape(u))
	last, err := lastDate(file)
	if err != nil {
		return err
	}
	if r.Date.Before(last) {
		return fmt.Errorf("%s: %w: it is dated %s, older than the release of %s seen before, so the mirror replays old metadata; use an up-to-date mirror (or delete %s if the archive really went back)", u, ErrStale, r.Date.UTC().Format(time.RFC3339), last.UTC().Format(time.RFC3339), file)
	}
	if c.Offline || !r.Date.After(last) {
		return nil
	}
	return writeAtomic(file, []byte(r.Date.UTC().Format(time.RFC3339)+"\n"))
}

// forSuite checks that the release is for the configured suite: its Suite
// (stable) or its Codename (bookworm) must be the suite, or, for the old
// "suite/updates" form, the part before the slash.
func (r *Release) forSuite(suite string) error {
	base, _, _ := strings.Cut(suite, "/")
	for _, s := range []string{suite, base} {
		if s != "" && (s == r.Suite || s == r.Codename) {
			return nil
		}
	}
	return fmt.Errorf("%w: it is for suite %q (codename %q), not %q, so the mirror serves another suite's metadata; check the suite in the source, or use another mirror", ErrStale, r.Suite, r.Codename, suite)
}

// lastDate reads the Date remembered in file; zero when there is none.
func lastDate(file string) (time.Time, error) {
	data, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	t, err := time.Parse(time.RFC3339, strings.TrimSpace(string(data)))
	if err != nil {
		return time.Time{}, fmt.Errorf("%s holds no date (%w); delete it to start over", file, err)
	}
	return t, nil
}
