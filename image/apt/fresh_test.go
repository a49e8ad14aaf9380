package apt

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var onePackage = []byte("Package: a\nVersion: 1\nFilename: pool/a.deb\nSize: 1\nSHA256: " + hexsum([]byte("a")) + "\n\n")

func until(d time.Time) string { return "Valid-Until: " + d.UTC().Format(time.RFC1123) + "\n" }

// TestFreshness: a validly signed release that is expired, for another
// suite or undated is refused; a current one is taken, by Suite or by
// Codename.
func TestFreshness(t *testing.T) {
	now := time.Now()
	day := 24 * time.Hour
	repo := newTestRepo(t, map[string]string{"a": ""})
	for _, tc := range []struct {
		name, head string
		stale      string // what the error says; "" for none
	}{
		{"current", releaseHead(now) + until(now.Add(7*day)), ""},
		{"by codename", "Suite: stable\nCodename: test\nDate: " + now.UTC().Format(time.RFC1123Z) + "\n", ""},
		{"by the part before /updates", "Suite: oldstable\nCodename: test\nDate: " + now.UTC().Format(time.RFC1123) + "\n", ""},
		{"expired", releaseHead(now.Add(-10*day)) + until(now.Add(-3*day)), "expired on"},
		{"another suite", "Suite: oldstable\nCodename: bullseye\nDate: " + now.UTC().Format(time.RFC1123) + "\n", `for suite "oldstable" (codename "bullseye"), not "test"`},
		{"undated", "Suite: test\n", "has no Date"},
		{"a date that is none", "Suite: test\nDate: yesterday\n", "is not a date"},
	} {
		repo.head = tc.head
		repo.publish(t, onePackage)
		c := repo.client(t)
		if tc.name == "by the part before /updates" {
			// dists/test/updates is dists/test.
			must(t, os.Symlink(".", filepath.Join(repo.dir, "dists/test/updates")))
			c.Sources[0].Suite = "test/updates"
		}
		_, err := c.Index(context.Background())
		switch {
		case tc.stale == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.stale != "" && (!errors.Is(err, ErrStale) || !strings.Contains(err.Error(), tc.stale)):
			t.Errorf("%s: %v, want ErrStale saying %q", tc.name, err, tc.stale)
		}
		os.Remove(filepath.Join(repo.dir, "dists/test/updates"))
	}
}

// TestReplayRefused: after a release of one date, an older one from the
// same source is refused, also by a new client on the same cache; a newer
// one is taken. Offline, the cached release outlives its Valid-Until.
func TestReplayRefused(t *testing.T) {
	now := time.Now()
	day := 24 * time.Hour
	repo := newTestRepo(t, map[string]string{"a": ""})
	c := repo.client(t)
	index := func(date time.Time) error {
		repo.head = releaseHead(date) + until(date.Add(7*day))
		repo.publish(t, onePackage)
		_, err := (&Client{Sources: c.Sources, Arch: c.Arch, Cache: c.Cache, Now: c.Now, Offline: c.Offline}).Index(context.Background())
		return err
	}
	must(t, index(now.Add(-day)))
	if err := index(now.Add(-2 * day)); !errors.Is(err, ErrStale) || !strings.Contains(err.Error(), "older than the release of") {
		t.Fatalf("an older release: %v, want ErrStale", err)
	}
	must(t, index(now.Add(-day))) // the same one again
	must(t, index(now))
	if _, err := os.Stat(filepath.Join(c.Cache, "release-dates")); err != nil {
		t.Errorf("no remembered dates in the cache: %v", err)
	}
	c.Now = func() time.Time { return now.Add(30 * day) }
	if err := index(now); !errors.Is(err, ErrStale) {
		t.Errorf("online a month on: %v, want ErrStale (expired)", err)
	}
	c.Offline = true
	if _, err := c.Index(context.Background()); err != nil {
		t.Errorf("offline a month on: %v, want the cached release", err)
	}
}
