// Package wifi joins the config's Wi-Fi networks with Debian's
// wpa_supplicant. It writes the supplicant's config, and follows the
// supplicant's events on its control socket: it says on the console what a
// person at the node needs to know (joined, lost, a passphrase refused, once
// per attempt), and tells the network code each time a link joins a network,
// so that it asks for a DHCP lease there.
package wifi

import (
	"context"
	"crypto/pbkdf2"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-os/cairn/configs"
	"github.com/cairn-os/cairn/internal/retry"
)

// Where the image has wpa_supplicant, and where init keeps its config and
// control sockets (the config holds passphrases: only root reads it).
const (
	Supplicant = "/sbin/wpa_supplicant"
	ConfFile   = "/run/cairn/wifi/wpa_supplicant.conf"
	CtrlDir    = "/run/cairn/wifi/ctrl"
)

// Conf is wpa_supplicant's config for the networks, the first preferred.
// A network with a passphrase is joined with WPA3-SAE or WPA2-PSK,
// whichever the access point offers, with protected management frames
// where it offers them (WPA3 requires them). Nothing is written quoted: the
// SSID and SAE's password in hex, WPA2's key as the PSK the passphrase
// gives (PBKDF2), so that no byte of them can end a string early or start
// a comment.
func Conf(ctrlDir, country string, nets []configs.WiFi) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "ctrl_interface=%s\nupdate_config=0\nap_scan=1\npmf=1\nsae_pwe=2\n", ctrlDir)
	if country != "" {
		fmt.Fprintf(&b, "country=%s\n", country)
	}
	for i, n := range nets {
		fmt.Fprintf(&b, "\nnetwork={\n\tssid=%s\n\tpriority=%d\n", hex.EncodeToString([]byte(n.SSID)), len(nets)-i)
		if n.Hidden {
			b.WriteString("\tscan_ssid=1\n")
		}
		if n.PSK == "" {
			b.WriteString("\tkey_mgmt=NONE\n")
		} else {
			fmt.Fprintf(&b, "\tkey_mgmt=WPA-PSK WPA-PSK-SHA256 SAE\n\tieee80211w=1\n\tpsk=%x\n\tsae_password=%x\n", PSK(n.PSK, n.SSID), n.PSK)
		}
		b.WriteString("}\n")
	}
	return []byte(b.String())
}

// PSK is WPA2's pre-shared key for a passphrase and an SSID (IEEE 802.11i:
// PBKDF2-SHA1, 4096 rounds, 32 bytes).
func PSK(passphrase, ssid string) []byte {
	key, err := pbkdf2.Key(sha1.New, passphrase, []byte(ssid), 4096, 32)
	if err != nil { // only for a key length the hash cannot give
		panic(err)
	}
	return key
}

// Follow follows the supplicant of iface until ctx ends: it attaches to
// its control socket (again whenever the supplicant restarts), logs its
// events, and calls joined each time the link joins a network.
func Follow(ctx context.Context, log *slog.Logger, ctrlDir, iface string, nets []configs.WiFi, joined func()) {
	f := &follower{log: log.With("iface", iface), ctrlDir: ctrlDir, iface: iface, nets: nets, joined: joined}
	// The supplicant takes a moment to open its socket; say so only when
	// it takes long.
	said, since := false, time.Now()
	for ctx.Err() == nil {
		conn, err := f.dial("events")
		if err == nil {
			var attached bool
			attached, err = f.attached(ctx, conn)
			conn.Close()
			if attached {
				said, since = false, time.Now()
			}
		}
		if err != nil && ctx.Err() == nil && !said && time.Since(since) > 15*time.Second {
			f.log.Warn("no answer from wpa_supplicant; still trying", "err", err)
			said = true
		}
		retry.Sleep(ctx, time.Second)
	}
}

type follower struct {
	log            *slog.Logger
	ctrlDir, iface string
	nets           []configs.WiFi
	joined         func()
	up             bool // joined, and not lost since
	notFoundSaid   bool
}

// dial connects a datagram socket of its own to the supplicant's.
func (f *follower) dial(use string) (*net.UnixConn, error) {
	local := filepath.Join(f.ctrlDir, fmt.Sprintf(".cairn-%s-%s", f.iface, use))
	os.Remove(local)
	return net.DialUnix("unixgram", &net.UnixAddr{Name: local, Net: "unixgram"}, &net.UnixAddr{Name: filepath.Join(f.ctrlDir, f.iface), Net: "unixgram"})
}

// request sends one command on a socket of its own and returns the reply.
func (f *follower) request(cmd string) (string, error) {
	conn, err := f.dial("request")
	if err != nil {
		return "", err
	}
	defer conn.Close()
	return ask(conn, cmd)
}

func ask(conn *net.UnixConn, cmd string) (string, error) {
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte(cmd)); err != nil {
		return "", err
	}
	buf := make([]byte, 4096)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return "", err
		}
		if reply := string(buf[:n]); !strings.HasPrefix(reply, "<") { // not an event
			return reply, nil
		}
	}
}

// pingAfter is how long the events may be quiet before a ping.
var pingAfter = 30 * time.Second

// attached reads events until the supplicant goes away or ctx ends. When
// it has been quiet a while it pings it on the same socket: a supplicant
// that restarted has a new socket, and writing to the old one fails.
func (f *follower) attached(ctx context.Context, conn *net.UnixConn) (bool, error) {
	if reply, err := ask(conn, "ATTACH"); err != nil || !strings.HasPrefix(reply, "OK") {
		return false, fmt.Errorf("attaching to wpa_supplicant: %q %v", reply, err)
	}
	defer context.AfterFunc(ctx, func() { conn.Close() })()
	buf := make([]byte, 4096)
	for ctx.Err() == nil {
		conn.SetReadDeadline(time.Now().Add(pingAfter))
		n, err := conn.Read(buf)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			if _, err := conn.Write([]byte("PING")); err != nil {
				return true, err
			}
			continue
		}
		if err != nil {
			return true, err
		}
		msg := string(buf[:n])
		if i := strings.IndexByte(msg, '>'); strings.HasPrefix(msg, "<") && i > 0 { // else a reply, such as PONG
			if f.event(msg[i+1:]) {
				return true, errors.New("wpa_supplicant is stopping")
			}
		}
	}
	return true, ctx.Err()
}

// event says what one of the supplicant's events means for the node, and
// whether the supplicant is stopping.
func (f *follower) event(msg string) (stopping bool) {
	name, rest, _ := strings.Cut(msg, " ")
	args := fields(rest)
	switch name {
	case "CTRL-EVENT-CONNECTED":
		status, _ := f.request("STATUS")
		st := fields(strings.ReplaceAll(status, "\n", " "))
		f.log.Info("Wi-Fi joined", "ssid", f.ssid(st["id"]), "security", st["key_mgmt"], "freq", st["freq"], "bssid", st["bssid"])
		f.up, f.notFoundSaid = true, false
		f.joined()
	case "CTRL-EVENT-DISCONNECTED":
		if f.up {
			f.log.Warn("Wi-Fi connection lost; looking for the networks again", "bssid", args["bssid"], "reason", args["reason"])
			f.up = false
		}
	case "CTRL-EVENT-SSID-TEMP-DISABLED":
		ssid, next := f.ssid(args["id"]), args["duration"]+"s"
		switch args["reason"] {
		case "WRONG_KEY":
			f.log.Warn("Wi-Fi network refused the passphrase; check its psk in network.wifi", "ssid", ssid, "attempt", args["auth_failures"], "next_try_in", next)
		default:
			f.log.Warn("Wi-Fi network could not be joined (with WPA3, a wrong passphrase looks like this too)", "ssid", ssid, "reason", args["reason"], "attempt", args["auth_failures"], "next_try_in", next)
		}
	case "CTRL-EVENT-NETWORK-NOT-FOUND":
		if !f.notFoundSaid {
			f.log.Info("none of the Wi-Fi networks is in reach yet; still looking", "networks", f.names())
			f.notFoundSaid = true
		}
	case "CTRL-EVENT-REGDOM-CHANGE":
		if c := args["alpha2"]; c != "" {
			f.log.Info("Wi-Fi regulatory domain set", "country", c, "by", strings.ToLower(args["init"]))
		}
	case "CTRL-EVENT-TERMINATING":
		f.up = false
		return true
	}
	return false
}

// ssid is the name of the network with the supplicant's id: its place in
// the config.
func (f *follower) ssid(id string) string {
	i, err := strconv.Atoi(id)
	if err != nil || i < 0 || i >= len(f.nets) {
		return "network " + id
	}
	return f.nets[i].SSID
}

func (f *follower) names() string {
	var n []string
	for _, w := range f.nets {
		n = append(n, w.SSID)
	}
	return strings.Join(n, ", ")
}

// fields reads key=value words; a value may be double-quoted.
func fields(s string) map[string]string {
	m := map[string]string{}
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		word := s
		key, val, ok := strings.Cut(s, "=")
		if ok && strings.HasPrefix(val, `"`) {
			if end := strings.IndexByte(val[1:], '"'); end >= 0 {
				m[key] = val[1 : end+1]
				s = val[end+2:]
				continue
			}
		}
		if i := strings.IndexByte(s, ' '); i >= 0 {
			word, s = s[:i], s[i:]
		} else {
			s = ""
		}
		if key, val, ok := strings.Cut(word, "="); ok {
			m[key] = val
		}
	}
	return m
}
