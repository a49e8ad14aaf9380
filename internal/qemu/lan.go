package qemu

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// A LAN is an Ethernet hub on loopback for VMs: each joins with
// Options.LAN = lan.Join(), and every frame one sends reaches all the
// others. Unlike a pair of QEMU sockets (one listens, one connects), any
// number of VMs may be on it at once, and a VM that stops and boots again
// joins again.
type LAN struct {
	l      net.Listener
	mu     sync.Mutex
	ports  map[*lanPort]struct{}
	closed bool
}

type lanPort struct {
	c   net.Conn
	out chan []byte
}

// maxFrame bounds a frame (QEMU sends at most 69632 bytes: 64 KiB and room).
const maxFrame = 1 << 17

// queued is how many frames wait for a VM before the hub drops its next
// ones, as a real hub with full buffers would, instead of holding the
// other VMs up.
const queued = 256

// NewLAN starts a hub on a free loopback port; Close stops it.
func NewLAN() (*LAN, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	n := &LAN{l: l, ports: map[*lanPort]struct{}{}}
	go n.accept()
	return n, nil
}

// Join is the Options.LAN value for a VM on this LAN.
func (n *LAN) Join() string { return "connect=" + n.l.Addr().String() }

// Close stops the hub and drops every VM's connection.
func (n *LAN) Close() error {
	err := n.l.Close()
	n.mu.Lock()
	defer n.mu.Unlock()
	n.closed = true
	for p := range n.ports {
		p.c.Close()
	}
	return err
}

func (n *LAN) accept() {
	for {
		c, err := n.l.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil { // out of file descriptors, say: try again
			time.Sleep(100 * time.Millisecond)
			continue
		}
		p := &lanPort{c: c, out: make(chan []byte, queued)}
		n.mu.Lock()
		if n.closed {
			n.mu.Unlock()
			c.Close()
			return
		}
		n.ports[p] = struct{}{}
		n.mu.Unlock()
		go p.send()
		go n.receive(p)
	}
}

// receive reads the frames a VM sends (QEMU's stream format: a 4-byte
// big-endian length, then the frame) and hands each to the others.
func (n *LAN) receive(p *lanPort) {
	defer func() {
		n.mu.Lock()
		delete(n.ports, p)
		n.mu.Unlock()
		p.c.Close()
		close(p.out)
	}()
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(p.c, hdr[:]); err != nil {
			return
		}
		size := binary.BigEndian.Uint32(hdr[:])
		if size > maxFrame {
			return
		}
		frame := make([]byte, 4+size)
		copy(frame, hdr[:])
		if _, err := io.ReadFull(p.c, frame[4:]); err != nil {
			return
		}
		n.mu.Lock()
		for q := range n.ports {
			if q != p {
				select {
				case q.out <- frame:
				default:
				}
			}
		}
		n.mu.Unlock()
	}
}

func (p *lanPort) send() {
	for frame := range p.out {
		if _, err := p.c.Write(frame); err != nil && !errors.Is(err, net.ErrClosed) {
			p.c.Close()
		}
	}
}
