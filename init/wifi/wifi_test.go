package wifi

import (
	"bytes"
	"context"
	"encoding/hex"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-os/cairn/configs"
)

func TestConf(t *testing.T) {
	got := string(Conf("/run/x", "DE", []configs.WiFi{
		{SSID: "home net", PSK: `pa"ss #word`},
		{SSID: "attic", PSK: "12345678", Hidden: true},
		{SSID: "café"},
	}))
	for _, want := range []string{
		"ctrl_interface=/run/x\n", "country=DE\n", "pmf=1\n",
		// The SSID in hex, the first network preferred; WPA2's key and
		// SAE's password unquoted.
		"network={\n\tssid=686f6d65206e6574\n\tpriority=3\n\tkey_mgmt=WPA-PSK WPA-PSK-SHA256 SAE\n\tieee80211w=1\n" +
			"\tpsk=" + hex.EncodeToString(PSK(`pa"ss #word`, "home net")) + "\n\tsae_password=70612273732023776f7264\n}\n",
		"network={\n\tssid=6174746963\n\tpriority=2\n\tscan_ssid=1\n",
		"network={\n\tssid=636166c3a9\n\tpriority=1\n\tkey_mgmt=NONE\n}\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the config lacks %q:\n%s", want, got)
		}
	}
	if strings.Count(got, "scan_ssid") != 1 || strings.Contains(got, `"`) {
		t.Errorf("only the hidden network is asked for by name, and nothing is quoted:\n%s", got)
	}
	if strings.Contains(string(Conf("/run/x", "", nil)), "country") {
		t.Error("a country without one in the config")
	}
}

// TestPSK checks the key against IEEE 802.11i's test vectors (H.4).
func TestPSK(t *testing.T) {
	for _, v := range []struct{ pass, ssid, want string }{
		{"password", "IEEE", "f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e"},
		{"ThisIsAPassword", "ThisIsASSID", "0dc0d6eb90555ed6419756b9a15ec3e3209b63df707dd508d14581f8982721af"},
	} {
		if got := hex.EncodeToString(PSK(v.pass, v.ssid)); got != v.want {
			t.Errorf("PSK(%q, %q) = %s, want %s", v.pass, v.ssid, got, v.want)
		}
	}
}

// TestFollow plays wpa_supplicant's side of the control socket: the events
// of a passphrase refused twice, networks out of reach, a join and a loss,
// and checks what the console gets of them.
func TestFollow(t *testing.T) {
	dir := t.TempDir()
	events := []string{
		"<3>CTRL-EVENT-NETWORK-NOT-FOUND",
		"<3>CTRL-EVENT-NETWORK-NOT-FOUND",
		"<3>CTRL-EVENT-REGDOM-CHANGE init=USER type=COUNTRY alpha2=DE",
		`<3>CTRL-EVENT-SSID-TEMP-DISABLED id=0 ssid="home" auth_failures=1 duration=10 reason=WRONG_KEY`,
		"<3>CTRL-EVENT-DISCONNECTED bssid=02:00:00:00:01:00 reason=15",
		`<3>CTRL-EVENT-SSID-TEMP-DISABLED id=0 ssid="home" auth_failures=2 duration=20 reason=WRONG_KEY`,
		"<3>CTRL-EVENT-CONNECTED - Connection to 02:00:00:00:02:00 completed [id=1 id_str=]",
		"<3>CTRL-EVENT-DISCONNECTED bssid=02:00:00:00:02:00 reason=4",
		"<3>CTRL-EVENT-SSID-TEMP-DISABLED id=1 ssid=\"attic\" auth_failures=1 duration=10 reason=CONN_FAILED",
	}
	fakeSupplicant(t, filepath.Join(dir, "wlan0"), events)
	var mu sync.Mutex
	var out bytes.Buffer
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return out.Write(p)
	}), &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	joins := make(chan struct{}, 4)
	done := make(chan struct{})
	go func() {
		Follow(ctx, log, dir, "wlan0", []configs.WiFi{{SSID: "home", PSK: "12345678"}, {SSID: "attic", PSK: "12345678", Hidden: true}}, func() { joins <- struct{}{} })
		close(done)
	}()
	select {
	case <-joins:
	case <-time.After(10 * time.Second):
		t.Fatal("no join")
	}
	want := []string{
		`level=INFO msg="none of the Wi-Fi networks is in reach yet; still looking" iface=wlan0 networks="home, attic"`,
		`level=INFO msg="Wi-Fi regulatory domain set" iface=wlan0 country=DE by=user`,
		`level=WARN msg="Wi-Fi network refused the passphrase; check its psk in network.wifi" iface=wlan0 ssid=home attempt=1 next_try_in=10s`,
		`level=WARN msg="Wi-Fi network refused the passphrase; check its psk in network.wifi" iface=wlan0 ssid=home attempt=2 next_try_in=20s`,
		`level=INFO msg="Wi-Fi joined" iface=wlan0 ssid=attic security=SAE freq=2437 bssid=02:00:00:00:02:00`,
		`level=WARN msg="Wi-Fi connection lost; looking for the networks again" iface=wlan0 bssid=02:00:00:00:02:00 reason=4`,
		`level=WARN msg="Wi-Fi network could not be joined (with WPA3, a wrong passphrase looks like this too)" iface=wlan0 ssid=attic reason=CONN_FAILED attempt=1 next_try_in=10s`,
	}
	var got string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		got = out.String()
		mu.Unlock()
		if strings.Count(got, "\n") >= len(want) {
			break
		}
	}
	// Only what the person at the console needs: one line per event that
	// matters, the search not repeated, a failed attempt's disconnection
	// not said.
	if got != strings.Join(want, "\n")+"\n" {
		t.Errorf("the console got:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Follow did not stop with its context")
	}
	if len(joins) != 0 {
		t.Errorf("%d joins more than the one", len(joins))
	}
}

// fakeSupplicant answers on path as wpa_supplicant's control socket does:
// OK to ATTACH, followed by events, a status, PONG to PING.
func fakeSupplicant(t *testing.T, path string, events []string) *net.UnixConn {
	t.Helper()
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sock.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			n, from, err := sock.ReadFromUnix(buf)
			if err != nil {
				return
			}
			switch cmd := string(buf[:n]); cmd {
			case "ATTACH":
				sock.WriteToUnix([]byte("OK\n"), from)
				for _, e := range events {
					sock.WriteToUnix([]byte(e), from)
				}
			case "STATUS":
				sock.WriteToUnix([]byte("bssid=02:00:00:00:02:00\nfreq=2437\nssid=attic\nid=1\nmode=station\nkey_mgmt=SAE\nwpa_state=COMPLETED\n"), from)
			case "PING":
				sock.WriteToUnix([]byte("PONG\n"), from)
			default:
				sock.WriteToUnix([]byte("UNKNOWN COMMAND\n"), from)
			}
		}
	}()
	return sock
}

// TestFollowAfterRestart: a supplicant that restarts has a new socket; the
// follower finds out when its ping fails, and follows the new one.
func TestFollowAfterRestart(t *testing.T) {
	defer func(d time.Duration) { pingAfter = d }(pingAfter)
	pingAfter = 100 * time.Millisecond
	dir := t.TempDir()
	path := filepath.Join(dir, "wlan0")
	joined := "<3>CTRL-EVENT-CONNECTED - Connection to 02:00:00:00:02:00 completed [id=0 id_str=]"
	old := fakeSupplicant(t, path, []string{joined})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	joins := make(chan struct{}, 4)
	go Follow(ctx, slog.New(slog.DiscardHandler), dir, "wlan0", []configs.WiFi{{SSID: "home"}}, func() { joins <- struct{}{} })
	for i := range 2 {
		select {
		case <-joins:
		case <-time.After(10 * time.Second):
			t.Fatalf("no join %d", i+1)
		}
		if i == 0 {
			time.Sleep(300 * time.Millisecond) // a ping or two answered
			old.Close()
			os.Remove(path)
			fakeSupplicant(t, path, []string{joined})
		}
	}
}

func TestFields(t *testing.T) {
	got := fields(`id=0 ssid="my home net" auth_failures=1 duration=10 reason=WRONG_KEY`)
	if got["ssid"] != "my home net" || got["reason"] != "WRONG_KEY" || got["duration"] != "10" || got["id"] != "0" {
		t.Errorf("%v", got)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
