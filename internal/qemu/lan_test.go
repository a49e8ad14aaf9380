package qemu

import (
	"encoding/binary"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// vmEnd is the hub's peer as QEMU's -netdev socket,connect= is.
type vmEnd struct {
	t *testing.T
	c net.Conn
}

func joinLAN(t *testing.T, n *LAN) *vmEnd {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(n.Join(), "connect="))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &vmEnd{t, c}
}

func (v *vmEnd) send(frame string) {
	v.t.Helper()
	b := binary.BigEndian.AppendUint32(nil, uint32(len(frame)))
	if _, err := v.c.Write(append(b, frame...)); err != nil {
		v.t.Fatal(err)
	}
}

// next returns the next frame, or "" when none comes within a second.
func (v *vmEnd) next() string {
	v.t.Helper()
	v.c.SetReadDeadline(time.Now().Add(time.Second))
	var hdr [4]byte
	if _, err := io.ReadFull(v.c, hdr[:]); err != nil {
		return ""
	}
	frame := make([]byte, binary.BigEndian.Uint32(hdr[:]))
	if _, err := io.ReadFull(v.c, frame); err != nil {
		v.t.Fatalf("a frame cut short: %v", err)
	}
	return string(frame)
}

// onLAN waits until the hub has taken in count VMs.
func onLAN(t *testing.T, n *LAN, count int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		n.mu.Lock()
		got := len(n.ports)
		n.mu.Unlock()
		if got == count {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the hub has %d VMs, want %d", got, count)
		}
	}
}

func TestLANCarriesFramesToEveryOtherVM(t *testing.T) {
	n, err := NewLAN()
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	a, b, c := joinLAN(t, n), joinLAN(t, n), joinLAN(t, n)
	onLAN(t, n, 3)
	a.send("from a")
	if got := b.next(); got != "from a" {
		t.Errorf("b got %q", got)
	}
	if got := c.next(); got != "from a" {
		t.Errorf("c got %q", got)
	}
	if got := a.next(); got != "" {
		t.Errorf("a got its own frame back: %q", got)
	}
	// A VM that goes (a power cut) and comes back is on the LAN again.
	b.c.Close()
	onLAN(t, n, 2)
	b = joinLAN(t, n)
	onLAN(t, n, 3)
	c.send(strings.Repeat("x", 1500))
	if got := b.next(); len(got) != 1500 {
		t.Errorf("b after rejoining got %d bytes", len(got))
	}
	if got := a.next(); len(got) != 1500 {
		t.Errorf("a got %d bytes", len(got))
	}
	// A VM sending a frame larger than any QEMU sends is cut off; the
	// others stay.
	a.c.Write(binary.BigEndian.AppendUint32(nil, maxFrame+1))
	a.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := a.c.Read(make([]byte, 1)); err == nil {
		t.Error("the hub kept a VM that sent an oversized frame")
	}
	b.send("still here")
	if got := c.next(); got != "still here" {
		t.Errorf("c got %q after a's oversized frame", got)
	}
}
