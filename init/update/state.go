package update

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/cairn-os/cairn/boot"
	"github.com/cairn-os/cairn/internal/atomicfile"
	"github.com/cairn-os/cairn/internal/nodeapi"
)

// StateFile is what the updater keeps on the data partition.
const StateFile = boot.UpdateState

// state is what the slots hold and what the last update did.
type state struct {
	Slots map[string]nodeapi.OS `json:"slots"`
	// Pending is the slot armed for a trial and not yet committed or
	// given up; "" when none.
	Pending string          `json:"pending,omitempty"`
	Last    *nodeapi.Result `json:"last,omitempty"`
	// Held is a build the channel's offer of is not taken: the last whose
	// trial failed here, or that a rollback left.
	Held int64 `json:"held,omitempty"`
}

// loadState reads the state, or starts one in which both slots hold what
// the image was built with (a new image installs the same system twice).
func loadState(file string, info boot.BuildInfo) (*state, error) {
	st := &state{}
	data, err := os.ReadFile(file)
	if err == nil {
		err = json.Unmarshal(data, st)
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if st.Slots == nil {
		os := nodeapi.OS{Version: info.Version, Build: info.Epoch}
		st.Slots = map[string]nodeapi.OS{boot.SlotA: os, boot.SlotB: os}
	}
	return st, nil
}

func (st *state) save(file string) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	return atomicfile.Write(file, append(data, '\n'), 0o600)
}

// outcome is a result of an update or rollback of slot, which holds os.
func outcome(slot string, os nodeapi.OS, state, reason string) *nodeapi.Result {
	return &nodeapi.Result{Time: time.Now().UTC(), Slot: slot, Version: os.Version, Build: os.Build, State: state, Reason: reason}
}
