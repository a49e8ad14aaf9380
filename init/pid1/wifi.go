package pid1

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/cairn-os/cairn/init/wifi"
	"github.com/cairn-os/cairn/internal/atomicfile"
	"github.com/cairn-os/cairn/internal/reaper"
	"github.com/cairn-os/cairn/internal/retry"
	"github.com/cairn-os/cairn/internal/service"
)

// joinWiFi starts a wpa_supplicant for a Wi-Fi link, kept running until
// shutdown, its output in /var/log (the console gets what Follow makes of
// its events), and follows it.
func (s *stage2) joinWiFi(log *slog.Logger) func(iface string) (<-chan struct{}, error) {
	return func(iface string) (<-chan struct{}, error) {
		if _, err := os.Stat(wifi.Supplicant); err != nil {
			return nil, fmt.Errorf("network.wifi needs wpa_supplicant, which this image lacks: build the image from a config with network.wifi (a cairn.yaml on the card cannot add it to an image for a board without Wi-Fi)")
		}
		if err := os.MkdirAll(wifi.CtrlDir, 0o700); err != nil {
			return nil, err
		}
		conf := wifi.Conf(wifi.CtrlDir, s.cfg.Network.WiFiCountry, s.cfg.Network.WiFi)
		if err := atomicfile.WritePrivate(wifi.ConfFile, conf); err != nil {
			return nil, err
		}
		log := log.With("service", "wpa_supplicant")
		s.start(&service.Service{
			Name: "wpa_supplicant " + iface,
			Command: func() *exec.Cmd {
				return exec.Command(wifi.Supplicant, "-i", iface, "-D", "nl80211", "-c", wifi.ConfFile)
			},
			Policy: service.Forever, LogFile: filepath.Join("/var/log", "wpa_supplicant-"+iface+".log"), Stamp: true,
			Start: reaper.Start, Wait: reaper.Wait,
			Backoff: retry.Backoff{Min: time.Second, Max: time.Minute}, Log: log,
		})
		joined := make(chan struct{}, 1)
		go wifi.Follow(s.ctx, log, wifi.CtrlDir, iface, s.cfg.Network.WiFi, func() {
			select {
			case joined <- struct{}{}:
			default:
			}
		})
		return joined, nil
	}
}
