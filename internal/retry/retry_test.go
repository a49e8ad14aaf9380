package retry

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

func TestBackoffDoublesUpToMaxAndResets(t *testing.T) {
	b := Backoff{Min: time.Second, Max: 5 * time.Second}
	var got []time.Duration
	for range 5 {
		got = append(got, b.Next())
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}
	if !slices.Equal(got, want) {
		t.Errorf("waits %v, want %v", got, want)
	}
	b.Reset()
	if d := b.Next(); d != time.Second {
		t.Errorf("after Reset: %v", d)
	}
	var zero Backoff
	if a, b := zero.Next(), zero.Next(); a != time.Second || b != 2*time.Second {
		t.Errorf("zero value: %v then %v", a, b)
	}
}

func TestUntil(t *testing.T) {
	tries := 0
	var waits []time.Duration
	err := Until(context.Background(), Backoff{Min: time.Millisecond, Max: 2 * time.Millisecond}, func(context.Context) error {
		if tries++; tries < 4 {
			return errors.New("not yet")
		}
		return nil
	}, func(err error, wait time.Duration) { waits = append(waits, wait) })
	if err != nil || tries != 4 || !slices.Equal(waits, []time.Duration{time.Millisecond, 2 * time.Millisecond, 2 * time.Millisecond}) {
		t.Errorf("err %v after %d tries, waits %v", err, tries, waits)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Until(ctx, Backoff{}, func(context.Context) error { return errors.New("never") }, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}
