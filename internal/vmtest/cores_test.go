package vmtest

import (
	"cmp"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// A VM under software emulation keeps about one host core busy, so the
// tests here run as many VMs at once as the host has cores. Go's testing
// starts parallel tests in no set order, up to -parallel of them whatever
// they boot: a cold CI run ended with its longest test started last, alone
// on the machine for 100 s, and TestCluster's last minutes, one VM after
// its agent's power cut, left a core idle. So each test that boots VMs
// waits for a core per VM (TestMain lifts -parallel), the longest first,
// and gives a core back when one of its VMs is done.
var hostCores = newCoreQueue(max(2, runtime.GOMAXPROCS(0)), 200*time.Millisecond)

// turn makes t a parallel test that waits until a core is free for each of
// the vms it runs at once, and returns giveBack, which returns n of them
// early; the rest go back when t ends. secs is about how long t takes (the
// slowest tests of a CI log say it): it only orders the tests.
func turn(t *testing.T, vms, secs int) (giveBack func(n int)) {
	t.Helper()
	t.Parallel()
	held := min(vms, hostCores.total)
	start := time.Now()
	hostCores.wait(held, secs)
	// scripts/testsum counts the test's time from here.
	t.Logf("waited %s before it started", time.Since(start).Round(100*time.Millisecond))
	var mu sync.Mutex
	giveBack = func(n int) {
		mu.Lock()
		n = min(n, held)
		held -= n
		mu.Unlock()
		hostCores.put(n)
	}
	t.Cleanup(func() { giveBack(vms) }) // what is still held
	markFirstFailure(t)
	return giveBack
}

// firstFailed is what markFirstFailure logs; scripts/testsum looks for it.
const firstFailed = "the test failed at the message above"

// failureMarks are the tests that markFirstFailure watches.
var failureMarks sync.Map // *testing.T → *failureMark

type failureMark struct {
	t    *testing.T
	once sync.Once
}

// check logs firstFailed once t has failed, and says whether it has.
func (m *failureMark) check() bool {
	if !m.t.Failed() {
		return false
	}
	m.once.Do(func() { m.t.Log(firstFailed) })
	return true
}

// markFirstFailure logs firstFailed as soon as t has failed, so that the
// message it failed at (a t.Error that did not stop it) can be told from
// the logs and failures after it, which in a VM test can be dozens. It
// polls: a message logged within the same 50 ms can come between. A
// cleanup that logs a console asks failedNow first, so that the mark comes
// before the console.
func markFirstFailure(t *testing.T) {
	m := &failureMark{t: t}
	failureMarks.Store(t, m)
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				if m.check() {
					return
				}
			}
		}
	}()
	t.Cleanup(func() {
		close(done)
		<-stopped
		failureMarks.Delete(t)
	})
}

// failedNow is t.Failed, having logged firstFailed if t is watched.
func failedNow(t *testing.T) bool {
	if m, ok := failureMarks.Load(t); ok {
		return m.(*failureMark).check()
	}
	return t.Failed()
}

// coreQueue hands out a fixed number of cores to waiters, the longest
// first. Parallel tests start together once the sequential ones are done,
// so the first grant waits until they have all asked (settle).
type coreQueue struct {
	mu      sync.Mutex
	total   int
	free    int
	settle  time.Duration
	started bool // the settle timer runs
	open    bool // the settle time is over: cores are granted
	waiting []*coreWaiter
}

type coreWaiter struct {
	n, secs int
	ready   chan struct{}
}

func newCoreQueue(total int, settle time.Duration) *coreQueue {
	return &coreQueue{total: total, free: total, settle: settle}
}

// wait blocks until n cores are the caller's.
func (q *coreQueue) wait(n, secs int) {
	w := &coreWaiter{n: n, secs: secs, ready: make(chan struct{})}
	q.mu.Lock()
	q.waiting = append(q.waiting, w)
	if !q.started {
		q.started = true
		time.AfterFunc(q.settle, func() {
			q.mu.Lock()
			q.open = true
			q.grant()
			q.mu.Unlock()
		})
	}
	q.grant()
	q.mu.Unlock()
	<-w.ready
}

func (q *coreQueue) put(n int) {
	q.mu.Lock()
	q.free += n
	q.grant()
	q.mu.Unlock()
}

// grant gives free cores to waiters, the longest first; one that needs
// more cores than are free lets shorter ones that fit go ahead.
func (q *coreQueue) grant() {
	if !q.open {
		return
	}
	slices.SortStableFunc(q.waiting, func(a, b *coreWaiter) int { return cmp.Compare(b.secs, a.secs) })
	q.waiting = slices.DeleteFunc(q.waiting, func(w *coreWaiter) bool {
		if w.n > q.free {
			return false
		}
		q.free -= w.n
		close(w.ready)
		return true
	})
}

// TestCoreQueue: once all have asked, the longest gets its cores first; a
// waiter that needs more than is free lets a shorter one go ahead; cores
// given back go to the next longest.
func TestCoreQueue(t *testing.T) {
	q := newCoreQueue(2, 50*time.Millisecond)
	granted := make(chan string)
	for _, w := range []struct {
		name    string
		n, secs int
	}{{"a", 1, 10}, {"b", 2, 100}, {"c", 1, 50}, {"d", 1, 5}} {
		go func() {
			q.wait(w.n, w.secs)
			granted <- w.name
		}()
	}
	next := func() string {
		select {
		case name := <-granted:
			return name
		case <-time.After(10 * time.Second):
			return "none"
		}
	}
	if got := next(); got != "b" {
		t.Fatalf("first granted %s, want b (2 cores, the longest)", got)
	}
	q.put(1)
	if got := next(); got != "c" {
		t.Fatalf("after one core back, granted %s, want c", got)
	}
	select {
	case name := <-granted:
		t.Fatalf("%s got a core that nobody gave back", name)
	case <-time.After(100 * time.Millisecond):
	}
	var got []string
	for range 2 {
		q.put(1)
		got = append(got, next())
	}
	if !slices.Equal(got, []string{"a", "d"}) {
		t.Errorf("then granted %v, want [a d]", got)
	}
	if q.free != 0 || len(q.waiting) != 0 {
		t.Errorf("%d cores free and %d waiting at the end, want 0 and 0", q.free, len(q.waiting))
	}
}
