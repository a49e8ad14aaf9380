package build

import "slices"

// What a node on Wi-Fi takes from Debian: wpa_supplicant, and the
// regulatory database the kernel reads once the country is set (Debian's
// copy, signed with a key the Debian kernel trusts, under the names the
// kernel asks for).
var wifiPackages = []string{"wpasupplicant", "wireless-regdb"}

var wifiFiles = []string{"sbin/wpa_supplicant", "lib/firmware/regulatory.db-debian", "lib/firmware/regulatory.db.p7s-debian"}

var regdbLinks = map[string]string{
	"lib/firmware/regulatory.db":     "regulatory.db-debian",
	"lib/firmware/regulatory.db.p7s": "regulatory.db.p7s-debian",
}

// wifiModules are the ciphers mac80211 asks the crypto API for (CCMP,
// GCMP, and BIP for protected management frames), which the kernel cannot
// load by itself: the image has no modprobe.
var wifiModules = []string{"ccm", "gcm", "ctr", "cmac", "ghash-generic"}

// hasWiFi says whether the image carries Wi-Fi: the board has a radio, or
// the config names a network (a USB stick on a board without one).
func (b *builder) hasWiFi() bool { return b.o.Board.WiFi != nil || len(b.o.Config.Network.WiFi) > 0 }

// wifiWant are the files of wifiFiles and of the board's radio firmware.
func (b *builder) wifiWant() []string {
	want := wifiFiles
	if w := b.o.Board.WiFi; w != nil {
		want = slices.Concat(wifiFiles, w.Firmware)
	}
	return expandFiles(b.userDirs, want)
}
