// Package qemu boots Cairn images in QEMU for `cairn vm` and the VM tests:
// it picks the firmware and devices for the board, uses software emulation
// unless a probe shows KVM works, and gives the serial console as a stream
// with helpers to wait for lines and to talk to init's debug console.
package qemu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/cairn-os/cairn/boards"
)

// Options describe one VM.
type Options struct {
	Board   *boards.Profile
	Image   string
	Forward []string // host:guest TCP port pairs ("6443" means 6443:6443)
	Net     string   // extra -netdev user options, e.g. "dns=10.0.2.3"
	// LAN adds a second NIC on a network shared with other VMs through a
	// QEMU socket: LAN.Join() for any number of VMs on a LAN hub, or
	// "listen=127.0.0.1:PORT" on one VM and "connect=127.0.0.1:PORT" on
	// one other. LANMAC is its address (each VM needs its own).
	LAN, LANMAC string
	// Direct boot (Raspberry Pi machine): kernel, initramfs, device tree,
	// command line; or a boot loader (U-Boot) as the kernel, with only
	// the device tree.
	Kernel, Initrd, DTB, Append string
	Console                     io.Writer // a copy of the serial console; nil for none
	Stdin                       bool      // connect the console input (interactive use)
	SMP                         int       // virtual CPUs; 0 means 2
	// Reboot lets a reboot of the guest restart the machine, as real
	// hardware does; by default QEMU exits instead.
	Reboot bool
	// Vars, if set, is the UEFI variable store to use and keep, made from
	// the board's template when missing: a machine's NVRAM across power
	// cuts. By default each start gets a fresh copy.
	Vars string
	// KeepOutput bounds what Output keeps of the console, for VMs that run
	// for days (cairn vm): beyond it the older half is dropped. Offsets
	// stay counted from the first byte. 0 keeps everything (the tests).
	KeepOutput int
}

// VM is a running QEMU.
type VM struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	mu    sync.Mutex
	out   bytes.Buffer
	base  int // console bytes dropped before out
	keep  int
	grow  *sync.Cond
	done  chan struct{}
	err   error
	tmp   string
	start time.Time
}

// Args returns the QEMU binary and arguments for o.
func Args(o Options, tmp string) (string, []string, error) {
	q := o.Board.QEMU
	if q == nil {
		return "", nil, fmt.Errorf("board %s has no QEMU machine; build for qemu-arm64 or qemu-amd64 to use cairn vm", o.Board.Name)
	}
	smp := o.SMP
	if smp == 0 {
		smp = 2
	}
	args := []string{"-machine", q.Machine, "-m", fmt.Sprint(q.Memory), "-display", "none", "-monitor", "none"}
	if !o.Reboot {
		args = append(args, "-no-reboot")
	}
	if q.Machine != "raspi3b" {
		args = append(args, "-smp", fmt.Sprint(smp))
	}
	if cpu := q.CPU; cpu != "" {
		if accel := Accel(q.Binary); accel == "kvm" {
			args = append(args, "-accel", "kvm", "-cpu", "host")
		} else {
			if q.Binary == "qemu-system-aarch64" && cpu == "max" {
				cpu = "max,pauth-impdef=on"
			}
			args = append(args, "-accel", "tcg,thread=multi", "-cpu", cpu)
		}
	}
	if len(q.Firmware) > 0 {
		code, err := firstExisting(q.Firmware)
		if err != nil {
			return "", nil, fmt.Errorf("UEFI firmware for %s: %w (install %s)", o.Board.Name, err, firmwarePackage(q.Binary))
		}
		vars, err := firstExisting(q.Vars)
		if err != nil {
			return "", nil, err
		}
		varsCopy := o.Vars
		if varsCopy == "" {
			varsCopy = filepath.Join(tmp, "vars.fd")
		}
		if _, err := os.Stat(varsCopy); err != nil {
			if err := copyFile(vars, varsCopy); err != nil {
				return "", nil, err
			}
		}
		args = append(args,
			"-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+code,
			"-drive", "if=pflash,format=raw,unit=1,file="+varsCopy)
	}
	switch q.Disk {
	case "sd":
		args = append(args, "-drive", "if=sd,format=raw,file="+o.Image)
	default:
		args = append(args, "-drive", "if=none,id=disk0,format=raw,file="+o.Image, "-device", "virtio-blk-pci,drive=disk0")
	}
	if q.NIC != "" {
		netdev := "user,id=net0"
		for _, f := range o.Forward {
			host, guest := ForwardPorts(f)
			netdev += fmt.Sprintf(",hostfwd=tcp:127.0.0.1:%s-:%s", host, guest)
		}
		if o.Net != "" {
			netdev += "," + o.Net
		}
		args = append(args, "-netdev", netdev, "-device", q.NIC+",netdev=net0")
		if o.LAN != "" {
			args = append(args, "-netdev", "socket,id=lan0,"+o.LAN, "-device", q.NIC+",netdev=lan0,mac="+o.LANMAC)
		}
		args = append(args, "-device", "virtio-rng-pci", "-device", "i6300esb")
	}
	if o.Kernel != "" {
		args = append(args, "-kernel", o.Kernel)
		for _, a := range [][2]string{{"-initrd", o.Initrd}, {"-append", o.Append}, {"-dtb", o.DTB}} {
			if a[1] != "" {
				args = append(args, a[0], a[1])
			}
		}
	}
	if q.Machine == "raspi3b" {
		// The mini UART (ttyS1, the Pi 3's console) is QEMU's second serial port.
		args = append(args, "-serial", "null", "-serial", "stdio")
	} else {
		args = append(args, "-serial", "stdio")
	}
	return q.Binary, args, nil
}

func firmwarePackage(bin string) string {
	if strings.Contains(bin, "aarch64") {
		return "qemu-efi-aarch64"
	}
	return "ovmf"
}

func firstExisting(paths []string) (string, error) {
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("none of %s exists", strings.Join(paths, ", "))
}

func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o644)
}

var (
	accelOnce sync.Map
)

// Accel is "kvm" when /dev/kvm works for this binary's guest architecture
// (a short probe boot succeeds), else "tcg". CAIRN_ACCEL overrides it.
func Accel(binary string) string {
	if a := os.Getenv("CAIRN_ACCEL"); a != "" {
		return a
	}
	if v, ok := accelOnce.Load(binary); ok {
		return v.(string)
	}
	res := "tcg"
	native := map[string]string{"amd64": "qemu-system-x86_64", "arm64": "qemu-system-aarch64"}[runtime.GOARCH]
	if native == binary {
		if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err == nil {
			f.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			machine := map[string]string{"qemu-system-x86_64": "q35", "qemu-system-aarch64": "virt"}[binary]
			out, err := exec.CommandContext(ctx, binary, "-machine", machine, "-accel", "kvm", "-cpu", "host", "-display", "none",
				"-monitor", "none", "-serial", "none", "-no-reboot", "-kernel", "/dev/null").CombinedOutput()
			cancel()
			// A working KVM fails quickly on the empty kernel, not on KVM.
			if err != nil && ctx.Err() == nil && !bytes.Contains(out, []byte("KVM")) && !bytes.Contains(out, []byte("kvm")) {
				res = "kvm"
			}
		}
	}
	accelOnce.Store(binary, res)
	return res
}

// ForwardPorts splits an Options.Forward entry into this machine's port
// and the guest's: "8080:80", or "6443" for the same port on both.
func ForwardPorts(f string) (host, guest string) {
	host, guest, ok := strings.Cut(f, ":")
	if !ok {
		guest = host
	}
	return host, guest
}

// Start boots a VM.
func Start(o Options) (*VM, error) {
	tmp, err := os.MkdirTemp("", "cairn-vm-*")
	if err != nil {
		return nil, err
	}
	bin, args, err := Args(o, tmp)
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	if _, err := exec.LookPath(bin); err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("%s is missing: install QEMU (make deps does)", bin)
	}
	v := &VM{cmd: exec.Command(bin, args...), done: make(chan struct{}), tmp: tmp, start: time.Now(), keep: o.KeepOutput}
	v.grow = sync.NewCond(&v.mu)
	var w io.Writer = (*consoleBuf)(v)
	if o.Console != nil {
		w = io.MultiWriter(w, o.Console)
	}
	v.cmd.Stdout, v.cmd.Stderr = w, w
	if o.Stdin {
		v.cmd.Stdin = os.Stdin
	} else if v.in, err = v.cmd.StdinPipe(); err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	if err := v.cmd.Start(); err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	go func() {
		v.err = v.cmd.Wait()
		// Before done: a program that exits once Kill or Wait returns
		// leaves no folder behind.
		os.RemoveAll(tmp)
		v.mu.Lock()
		close(v.done)
		v.grow.Broadcast()
		v.mu.Unlock()
	}()
	return v, nil
}

type consoleBuf VM

func (c *consoleBuf) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.out.Write(p)
	if c.keep > 0 && c.out.Len() > c.keep {
		drop := c.out.Len() - c.keep/2
		c.base += drop
		c.out.Next(drop)
	}
	c.grow.Broadcast()
	return len(p), nil
}

// Output is everything the console printed so far (its last
// Options.KeepOutput bytes or more, when that is set).
func (v *VM) Output() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.out.String()
}

// ErrExited is returned when QEMU stops while something is awaited.
var ErrExited = errors.New("the VM stopped")

// WaitFor waits until the console, from byte offset from on, contains s, and
// returns the offset just after it.
func (v *VM) WaitFor(s string, from int, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	timer := time.AfterFunc(timeout, func() { v.mu.Lock(); v.grow.Broadcast(); v.mu.Unlock() })
	defer timer.Stop()
	v.mu.Lock()
	defer v.mu.Unlock()
	for {
		at := max(from, v.base) - v.base
		if at <= v.out.Len() {
			if i := strings.Index(v.out.String()[at:], s); i >= 0 {
				return v.base + at + i + len(s), nil
			}
		}
		select {
		case <-v.done:
			return 0, fmt.Errorf("%w (%w) before printing %q", ErrExited, v.err, s)
		default:
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("no %q on the console within %s", s, timeout)
		}
		v.grow.Wait()
	}
}

// Run sends a command to init's debug console and returns its answer
// (with Options.KeepOutput 0).
func (v *VM) Run(command string, timeout time.Duration) (string, error) {
	if v.in == nil {
		return "", errors.New("the console input is not connected")
	}
	from := len(v.Output())
	if _, err := fmt.Fprintf(v.in, "%s\n", command); err != nil {
		return "", err
	}
	end, err := v.WaitFor("cairn-debug: end", from, timeout)
	if err != nil {
		return "", err
	}
	out := strings.ReplaceAll(v.Output()[from:end-len("cairn-debug: end")], "\r", "")
	if i := strings.LastIndex(out, "cairn-debug: begin\n"); i >= 0 {
		out = out[i+len("cairn-debug: begin\n"):]
	}
	// Drop init's log lines, which may come between the answer's lines.
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if l != "" && !strings.HasPrefix(l, "cairn: ") {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		return "", nil
	}
	return strings.Join(lines, "\n") + "\n", nil
}

// Since is the time since QEMU started.
func (v *VM) Since() time.Duration { return time.Since(v.start) }

// Kill stops QEMU at once (a power cut) and waits for it.
func (v *VM) Kill() {
	if v.cmd.Process != nil {
		v.cmd.Process.Kill()
	}
	<-v.done
}

// Wait waits for QEMU to exit.
func (v *VM) Wait() error {
	<-v.done
	return v.err
}
