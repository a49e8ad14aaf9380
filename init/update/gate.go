package update

import (
	"context"
	"fmt"
	"time"

	"github.com/cairn-os/cairn/boot"
	"github.com/cairn-os/cairn/boot/family"
	"github.com/cairn-os/cairn/init/disk"
	"github.com/cairn-os/cairn/internal/nodeapi"
)

// Health says whether the node is healthy, and if not what it waits for.
type Health func() (ok bool, waiting string)

// Gate runs once per boot. On a slot on trial it waits until the node is
// healthy and commits the slot, or gives the slot up after n.Trial and
// reboots into the committed one. On the committed slot it notes a trial
// that did not come back (the loader fell back by itself).
func (n *Node) Gate(ctx context.Context, healthy Health) {
	chooser, err := family.ChooserOf(n.Info.Family)
	if err != nil {
		return // no updates on this family yet
	}
	var committed string
	err = n.withBoot(false, func(_ *disk.Disk, dir string) error {
		committed, err = chooser.Committed(dir)
		return err
	})
	if err != nil {
		n.Log.Error("cannot tell the committed slot", "err", err)
		return
	}
	if committed == n.Booted {
		n.noteFallback()
		return
	}
	n.Log.Info(fmt.Sprintf("slot %s is on trial: it is committed once the node is healthy, within %s", n.Booted, n.Trial))
	deadline := time.Now().Add(n.Trial)
	waiting := ""
	for {
		var ok bool
		if ok, waiting = healthy(); ok {
			break
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
	n.commit(chooser)
}

func (n *Node) commit(chooser family.Chooser) {
	n.mu.Lock()
	defer n.mu.Unlock()
	err := n.withBoot(true, func(_ *disk.Disk, dir string) error { return chooser.Commit(dir, n.Booted) })
	st, serr := loadState(StateFile, n.Info)
	if err != nil || serr != nil {
		n.Log.Error("could not commit the slot on trial; it stays on trial", "slot", n.Booted, "err", err, "state", serr)
		return
	}
	os := st.Slots[n.Booted]
	st.Pending = ""
	st.Last = &nodeapi.Result{Time: time.Now().UTC(), Slot: n.Booted, Version: os.Version, Build: os.Build, State: "committed"}
	if err := st.save(StateFile); err != nil {
		n.Log.Warn("update state", "err", err)
	}
	n.Log.Info("slot committed: the node is healthy", "slot", n.Booted, "version", os.Version)
}

// giveUp records why the trial failed and reboots; the loader then boots
// the committed slot, since the trial was for one boot only.
func (n *Node) giveUp(reason string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.Log.Error("giving up the slot on trial; rebooting into the committed slot", "slot", n.Booted, "reason", reason)
	if st, err := loadState(StateFile, n.Info); err == nil {
		os := st.Slots[n.Booted]
		st.Pending = ""
		st.Last = &nodeapi.Result{Time: time.Now().UTC(), Slot: n.Booted, Version: os.Version, Build: os.Build, State: "rolled-back", Reason: reason}
		st.save(StateFile)
	}
	n.Reboot()
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
	st.Last = &nodeapi.Result{Time: time.Now().UTC(), Slot: st.Pending, Version: os.Version, Build: os.Build, State: "rolled-back", Reason: reason}
	st.Pending = ""
	if err := st.save(StateFile); err != nil {
		n.Log.Warn("update state", "err", err)
	}
	n.Log.Error("the last update was rolled back", "reason", reason)
}

// Rollback arms a trial of the other slot and asks for a reboot.
func (n *Node) Rollback() (*nodeapi.Result, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	chooser, err := family.ChooserOf(n.Info.Family)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	other := boot.Other(n.Booted)
	st, err := loadState(StateFile, n.Info)
	if err != nil {
		return nil, err
	}
	os := st.Slots[other]
	if os.Build == 0 {
		return nil, fmt.Errorf("%w: slot %s holds no complete system (%s)", ErrRefused, other, os.Version)
	}
	err = n.withBoot(false, func(_ *disk.Disk, dir string) error {
		committed, err := chooser.Committed(dir)
		if err == nil && committed != n.Booted {
			err = fmt.Errorf("%w: this node runs slot %s on trial; wait until the trial ends (cairn status)", ErrRefused, n.Booted)
		}
		if err == nil {
			err = chooser.Arm(dir, other)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	res := &nodeapi.Result{Time: time.Now().UTC(), Slot: other, Version: os.Version, Build: os.Build, State: "installed", Reason: "rollback"}
	st.Pending, st.Last = other, res
	if err := st.save(StateFile); err != nil {
		return nil, err
	}
	n.Log.Info("rolling back: rebooting into the other slot on trial", "slot", other, "version", os.Version)
	n.Reboot()
	return res, nil
}

// Status reports the slots and the last update.
func (n *Node) Status() (*nodeapi.Status, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	st, err := loadState(StateFile, n.Info)
	if err != nil {
		return nil, err
	}
	s := &nodeapi.Status{Hostname: n.Hostname, Board: n.Info.Board, Booted: n.Booted, Committed: n.Booted, Slots: st.Slots, Last: st.Last}
	if chooser, err := family.ChooserOf(n.Info.Family); err == nil {
		err = n.withBoot(false, func(_ *disk.Disk, dir string) error {
			s.Committed, err = chooser.Committed(dir)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	s.Trial = s.Committed != s.Booted
	return s, nil
}
