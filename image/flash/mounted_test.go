//go:build linux

package flash

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// The device that / is mounted from is named as the running system.
func TestRunningSystemIsRefused(t *testing.T) {
	var st unix.Stat_t
	if err := unix.Stat("/", &st); err != nil {
		t.Fatal(err)
	}
	root := map[string]string{fmt.Sprintf("%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev)): "/dev/rootdisk"}
	err := mounted("/dev/rootdisk", root)
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "/dev/rootdisk holds the running system (/ is mounted from /dev/rootdisk)") {
		t.Errorf("the root's device: %v", err)
	}
	if err := mounted("/dev/other", map[string]string{"4095:4095": "/dev/other"}); err != nil {
		t.Errorf("a device mounted nowhere: %v", err)
	}
}

func TestUnescape(t *testing.T) {
	if got := unescape(`/media/my\040card\134x`); got != `/media/my card\x` {
		t.Errorf("unescape: %q", got)
	}
}
