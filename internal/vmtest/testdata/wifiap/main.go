// Command wifiap is the access points of TestWiFi, inside the VM under
// test. The test boots the image's kernel with an initramfs of its own
// after the image's, and this program as rdinit: it starts itself again as
// the access points' side, and becomes the image's init.
//
// That side waits until init has entered the image's root and loaded
// mac80211_hwsim (whose two radios are wlan0, the node's, and wlan1,
// unused), enters the same root, adds two radios, and runs an access point
// on each with the image's wpa_supplicant in AP mode, and a DHCP server:
//
//   - wlan2: cairn-wpa2, WPA2-PSK with a passphrase the node does not have;
//   - wlan3: cairn-sae, hidden, WPA3-SAE only, leases of 20 s. After the
//     third request it gets (the lease and two renewals) it stops for a few
//     seconds and comes back, as an access point that reboots does.
//
// What it does is said on the console, each line starting "wifiap:".
package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "ap" {
		if err := accessPoints(); err != nil {
			say("failed: %v", err)
		}
		for {
			time.Sleep(time.Hour)
		}
	}
	ap := exec.Command("/wifiap", "ap")
	ap.Stdout, ap.Stderr = os.Stdout, os.Stderr
	if err := ap.Start(); err != nil {
		say("starting the access points: %v", err)
	}
	err := syscall.Exec("/init", []string{"/init"}, os.Environ())
	say("exec /init: %v", err)
	select {}
}

func say(format string, args ...any) {
	fmt.Printf("wifiap: "+format+"\n", args...)
}

// ap is one access point: a radio, a wpa_supplicant config, a subnet.
type ap struct {
	iface, conf string
	subnet      byte // 10.77.subnet.0/24
	restart     bool
	cmd         *exec.Cmd
	requests    atomic.Int32
}

func accessPoints() error {
	if err := os.MkdirAll("/wifiap-proc", 0o755); err != nil {
		return err
	}
	if err := unix.Mount("proc", "/wifiap-proc", "proc", 0, ""); err != nil {
		return err
	}
	// init's root, once it has entered the image's.
	if err := waitFor("init to enter the image's root", 10*time.Minute, func() bool {
		_, err := os.Stat("/wifiap-proc/1/root/sbin/wpa_supplicant")
		return err == nil
	}); err != nil {
		return err
	}
	if err := unix.Chroot("/wifiap-proc/1/root"); err != nil {
		return err
	}
	os.Chdir("/")
	if err := waitFor("mac80211_hwsim's radios", 10*time.Minute, func() bool {
		_, err := os.Stat("/sys/class/net/wlan1")
		return err == nil
	}); err != nil {
		return err
	}
	// The module may show its radios before its netlink family.
	for range 2 {
		var err error
		waitFor("a new radio", time.Minute, func() bool { err = newRadio(); return err == nil })
		if err != nil {
			return fmt.Errorf("adding a radio: %w", err)
		}
	}
	if err := os.MkdirAll("/run/wifiap", 0o755); err != nil {
		return err
	}
	aps := []*ap{
		{iface: "wlan2", subnet: 2, conf: `network={
	ssid="cairn-wpa2"
	mode=2
	frequency=2412
	proto=RSN
	key_mgmt=WPA-PSK
	pairwise=CCMP
	group=CCMP
	psk="the-right-passphrase"
}
`},
		{iface: "wlan3", subnet: 3, restart: true, conf: `network={
	ssid="cairn-sae"
	mode=2
	frequency=2437
	ignore_broadcast_ssid=1
	proto=RSN
	key_mgmt=SAE
	ieee80211w=2
	pairwise=CCMP
	group=CCMP
	sae_password=` + fmt.Sprintf("%x", `sae "quoted" #1`) + `
}
`},
	}
	for _, a := range aps {
		if err := waitFor(a.iface, time.Minute, func() bool {
			_, err := os.Stat("/sys/class/net/" + a.iface)
			return err == nil
		}); err != nil {
			return err
		}
		if err := a.start(); err != nil {
			return err
		}
		if err := a.serveDHCP(); err != nil {
			return err
		}
	}
	say("access points up")
	go sayRegulatoryDomain()
	return nil
}

// sayRegulatoryDomain says the kernel's regulatory domain once the node's
// supplicant has set one (the world domain, 00, before), or after two
// minutes whatever it is.
func sayRegulatoryDomain() {
	var country string
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
		c, err := regulatoryDomain()
		if err != nil {
			say("regulatory domain: %v", err)
			return
		}
		if country = c; country != "00" {
			break
		}
	}
	say("regulatory domain %s", country)
}

// regulatoryDomain asks nl80211 for the kernel's regulatory domain.
func regulatoryDomain() (string, error) {
	const cmdGetReg, attrRegAlpha2 = 31, 33 // NL80211_CMD_GET_REG, NL80211_ATTR_REG_ALPHA2
	msgs, err := genl("nl80211", cmdGetReg, 0)
	if err != nil {
		return "", err
	}
	for _, m := range msgs {
		if len(m) < 4 {
			continue
		}
		attrs, err := nl.ParseRouteAttr(m[4:])
		if err != nil {
			return "", err
		}
		for _, a := range attrs {
			if a.Attr.Type == attrRegAlpha2 {
				return strings.TrimRight(string(a.Value), "\x00"), nil
			}
		}
	}
	return "", fmt.Errorf("no country in nl80211's answer")
}

func (a *ap) start() error {
	conf := filepath.Join("/run/wifiap", a.iface+".conf")
	if err := os.WriteFile(conf, []byte(a.conf), 0o600); err != nil {
		return err
	}
	a.cmd = exec.Command("/sbin/wpa_supplicant", "-i", a.iface, "-D", "nl80211", "-c", conf, "-t", "-f", filepath.Join("/run/wifiap", a.iface+".log"))
	if err := a.cmd.Start(); err != nil {
		return err
	}
	go a.cmd.Wait()
	say("%s: access point started", a.iface)
	return nil
}

// serveDHCP gives the one client 10.77.N.10 for 20 s, answering by
// broadcast on the radio.
func (a *ap) serveDHCP() error {
	l, err := netlink.LinkByName(a.iface)
	if err != nil {
		return err
	}
	me := net.IPv4(10, 77, a.subnet, 1).To4()
	addr, _ := netlink.ParseAddr(me.String() + "/24")
	if err := netlink.AddrReplace(l, addr); err != nil {
		return err
	}
	netlink.LinkSetUp(l)
	handler := func(conn net.PacketConn, _ net.Addr, m *dhcpv4.DHCPv4) {
		var typ dhcpv4.MessageType
		switch m.MessageType() {
		case dhcpv4.MessageTypeDiscover:
			typ = dhcpv4.MessageTypeOffer
		case dhcpv4.MessageTypeRequest:
			typ = dhcpv4.MessageTypeAck
		default:
			return
		}
		reply, err := dhcpv4.NewReplyFromRequest(m, dhcpv4.WithMessageType(typ),
			dhcpv4.WithYourIP(net.IPv4(10, 77, a.subnet, 10)), dhcpv4.WithServerIP(me),
			dhcpv4.WithOption(dhcpv4.OptSubnetMask(net.CIDRMask(24, 32))),
			dhcpv4.WithOption(dhcpv4.OptRouter(me)),
			dhcpv4.WithOption(dhcpv4.OptServerIdentifier(me)),
			dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(20*time.Second)))
		if err != nil {
			say("%s: DHCP reply: %v", a.iface, err)
			return
		}
		if _, err := conn.WriteTo(reply.ToBytes(), &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ClientPort}); err != nil {
			say("%s: DHCP reply: %v", a.iface, err)
			return
		}
		say("%s: DHCP %s to %s", a.iface, typ, m.ClientHWAddr)
		if typ == dhcpv4.MessageTypeAck && a.requests.Add(1) == 3 && a.restart {
			go a.bounce()
		}
	}
	srv, err := server4.NewServer(a.iface, &net.UDPAddr{IP: net.IPv4zero, Port: dhcpv4.ServerPort}, handler)
	if err != nil {
		return err
	}
	go srv.Serve()
	return nil
}

// bounce stops the access point and starts it again a few seconds later.
func (a *ap) bounce() {
	say("%s: access point stopping", a.iface)
	a.cmd.Process.Signal(unix.SIGTERM)
	time.Sleep(5 * time.Second)
	if err := a.start(); err != nil {
		say("%s: %v", a.iface, err)
	}
}

// newRadio asks mac80211_hwsim for one more radio.
func newRadio() error {
	const cmdNewRadio = 4 // HWSIM_CMD_NEW_RADIO
	_, err := genl("MAC80211_HWSIM", cmdNewRadio, unix.NLM_F_ACK)
	// The kernel acknowledges with the new radio's number where an error
	// would be, which the library takes for a negative errno.
	if e, ok := err.(syscall.Errno); ok && int(e) < 0 {
		say("radio %d added", -int(e))
		return nil
	}
	return err
}

// genl sends one generic netlink command to a family and returns the
// answers' payloads.
func genl(family string, cmd uint8, flags int) ([][]byte, error) {
	fam, err := netlink.GenlFamilyGet(family)
	if err != nil {
		return nil, fmt.Errorf("the netlink family %s: %w", family, err)
	}
	req := nl.NewNetlinkRequest(int(fam.ID), flags)
	req.AddData(&nl.Genlmsg{Command: cmd, Version: 1})
	return req.Execute(unix.NETLINK_GENERIC, 0)
}

func waitFor(what string, limit time.Duration, ok func() bool) error {
	for deadline := time.Now().Add(limit); !ok(); time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("no %s within %s", what, limit)
		}
	}
	return nil
}
