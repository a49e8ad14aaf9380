package update

import (
	"context"
	"fmt"
	"time"

	"github.com/cairn-os/cairn/boot"
	"github.com/cairn-os/cairn/boot/family"
	"github.com/cairn-os/cairn/init/disk"
	"github.com/cairn-os/cairn/internal/nodeapi"
	"github.com/cairn-os/cairn/internal/retry"
)

// Health says whether the node is healthy, and if not what it waits for.
type Health func() (ok bool, waiting string)

// Gate runs once per boot, from early in init's stage 2. On a slot on
// trial it waits until the node is healthy and commits the slot, or gives
// the slot up when the trial's time (from n.Since) is over and reboots
// into the committed one. On the committed slot it notes a trial that did
// not come back (the loader fell back by itself).
func (n *Node) Gate(ctx context.Context, healthy Health) {
	chooser, err := family.ChooserOf(n.Info.Family)
	if err != nil {
		return // no updates on this family yet
	}
	var committed string
	var last error
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	err = retry.Until(rctx, retry.Backoff{Min: time.Second, Max: 10 * time.Second}, func(context.Context) error {
		n.mu.Lock()
		defer n.mu.Unlock()
		return n.withBoot(false, func(_ *disk.Disk, dir string) (err error) {
			committed, err = chooser.Committed(dir)
			return err
		})
	}, func(err error, _ time.Duration) { last = err })
	if err != nil {
		n.Log.Error("cannot tell the committed slot, so updates are off until the next boot", "err", last)
		return
	}
	if committed == n.Booted {
		n.noteFallback() // before updates are let in (ready)
	}
	n.smu.Lock()
	n.committed = committed
	n.smu.Unlock()
	if committed == n.Booted {
		return
	}
	deadline := n.Since.Add(n.Trial)
	if n.Watchdog != nil {
		n.Watchdog(deadline.Add(2 * time.Minute)) // if giving up hangs
	}
	n.Log.Info(fmt.Sprintf("slot %s is on trial: it is committed once the node is healthy, within %s", n.Booted, n.Trial))
	waiting := ""
	for {
		ok := false
		if ok, waiting = healthy(); ok {
			err := n.commit(chooser)
			if err == nil {
				return
			}
			waiting = "the commit failed: " + err.Error()
			n.Log.Error("could not commit the slot on trial; trying again", "slot", n.Booted, "err", err)
		}
		if time.Now().After(deadline) {
			n.giveUp(fmt.Sprintf("not healthy within %s: %s", n.Trial, waiting))
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
	}
}

// commit makes the running slot the committed one.
func (n *Node) commit(chooser family.Chooser) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.withBoot(true, func(_ *disk.Disk, dir string) error { return chooser.Commit(dir, n.Booted) }); err != nil {
		return err
	}
	n.smu.Lock()
	n.committed = n.Booted
	n.smu.Unlock()
	if n.Watchdog != nil {
		n.Watchdog(time.Time{})
	}
	n.Log.Info("slot committed: the node is healthy", "slot", n.Booted)
	st, err := loadState(StateFile, n.Info)
	if err == nil {
		os := st.Slots[n.Booted]
		st.Pending = ""
		st.Last = outcome(n.Booted, os, "committed", "")
		err = st.save(StateFile)
	}
	if err != nil {
		n.Log.Warn("the slot is committed, but its record is not", "file", StateFile, "err", err)
	}
	return nil
}

// giveUp records why the trial failed and reboots; the loader then boots
// the committed slot, since the trial was for one boot only.
func (n *Node) giveUp(reason string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.Log.Error("giving up the slot on trial; rebooting into the committed slot", "slot", n.Booted, "reason", reason)
	if st, err := loadState(StateFile, n.Info); err == nil {
		os := st.Slots[n.Booted]
		st.Pending, st.Held = "", os.Build
		st.Last = outcome(n.Booted, os, "rolled-back", reason)
		st.save(StateFile)
	}
	n.setRebooting(n.committedSlot(), false)
}

func (n *Node) committedSlot() string {
	n.smu.Lock()
	defer n.smu.Unlock()
	return n.committed
}

// noteFallback records a trial that ended without a word from the trial
// slot: it did not boot, or its init never got as far as giving it up.
func (n *Node) noteFallback() {
	n.mu.Lock()
	defer n.mu.Unlock()
	st, err := loadState(StateFile, n.Info)
	if err != nil || st.Pending == "" || st.Pending == n.Booted {
		return
	}
	os := st.Slots[st.Pending]
	reason := fmt.Sprintf("slot %s did not come up (its kernel or init failed, or it hung until the watchdog reset it); slot %s booted again", st.Pending, n.Booted)
	st.Last = outcome(st.Pending, os, "rolled-back", reason)
	st.Pending, st.Held = "", os.Build
	if err := st.save(StateFile); err != nil {
		n.Log.Warn("update state", "err", err)
	}
	n.Log.Error("the last update was rolled back", "reason", reason)
}

// Rollback arms a trial of the other slot and asks for a reboot.
func (n *Node) Rollback() (*nodeapi.Result, error) {
	chooser, err := n.begin()
	if err != nil {
		return nil, err
	}
	defer n.mu.Unlock()
	other := boot.Other(n.Booted)
	st, err := loadState(StateFile, n.Info)
	if err != nil {
		return nil, err
	}
	os := st.Slots[other]
	if os.Build == 0 {
		return nil, fmt.Errorf("%w: slot %s holds no complete system (%s)", ErrRefused, other, os.Version)
	}
	res := outcome(other, os, "installed", "rollback")
	prev := *st
	// The build left behind is not pulled from the channel again.
	st.Pending, st.Last, st.Held = other, res, st.Slots[n.Booted].Build
	if err := st.save(StateFile); err != nil {
		return nil, err
	}
	// Read-write: the Raspberry Pi 3's chooser arms a trial in a file there.
	if err := n.withBoot(true, func(_ *disk.Disk, dir string) error { return chooser.Arm(dir, other) }); err != nil {
		prev.save(StateFile)
		return nil, err
	}
	n.Log.Info("rolling back: rebooting into the other slot on trial", "slot", other, "version", os.Version)
	n.setRebooting(other, true)
	return res, nil
}

// Status reports the slots and the last update. It takes no lock an
// install holds, so it answers during one.
func (n *Node) Status() (*nodeapi.Status, error) {
	st, err := loadState(StateFile, n.Info)
	if err != nil {
		return nil, err
	}
	n.smu.Lock()
	committed := n.committed
	n.smu.Unlock()
	s := &nodeapi.Status{Hostname: n.Hostname, Board: n.Info.Board, Booted: n.Booted, Committed: committed, Slots: st.Slots, Last: st.Last}
	s.Trial = committed != "" && committed != n.Booted
	return s, nil
}
