package configs

import (
	"fmt"
	"net"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/cairn-os/cairn/boot"
)

var (
	hostnameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	domainRE   = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?$`)
	sysctlRE   = regexp.MustCompile(`^[a-z0-9_]+([./][a-zA-Z0-9_-]+)+$`)
	moduleRE   = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	taintRE    = regexp.MustCompile(`^[A-Za-z0-9./_-]+(=[A-Za-z0-9._-]*)?:(NoSchedule|PreferNoSchedule|NoExecute)$`)
	labelKeyRE = regexp.MustCompile(`^([a-z0-9.-]{1,253}/)?[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$`)
)

type checker struct {
	c           *Config
	errs, warns problemList
}

func (k *checker) err(path, format string, args ...any) {
	if k.errs.room() {
		k.errs.add(k.c.Problem(path, fmt.Sprintf(format, args...)))
	}
}

func (k *checker) warn(path, format string, args ...any) {
	if k.warns.room() {
		k.warns.add(k.c.Problem(path, fmt.Sprintf(format, args...)))
	}
}

// Validate checks the meaning of a decoded config. It returns warnings
// (worth reading, not fatal) and errors (the config cannot be used).
func (c *Config) Validate() (warnings []Problem, errs Problems) {
	k := &checker{c: c}
	n := &c.Node
	switch {
	case n.APIVersion == "":
		k.err("apiVersion", "required; set apiVersion: %s", APIVersion)
	case n.APIVersion != APIVersion:
		k.err("apiVersion", "%q is not supported; this cairn reads %s", n.APIVersion, APIVersion)
	}
	switch {
	case n.Kind == "":
		k.err("kind", "required; set kind: %s", Kind)
	case n.Kind != Kind:
		k.err("kind", "%q is not a kind this cairn reads; use %s", n.Kind, Kind)
	}
	if n.Hostname != "" && !hostnameRE.MatchString(n.Hostname) {
		k.err("hostname", "%q is not a valid host name: use 1 to 63 lower-case letters, digits and '-', not starting or ending with '-'", n.Hostname)
	}
	k.network(&n.Network)
	for i, s := range n.Time.NTP {
		p := fmt.Sprintf("time.ntp[%d]", i)
		host, port, err := net.SplitHostPort(s)
		if err != nil {
			host, port = s, "123"
		}
		if pn, e := strconv.Atoi(port); e != nil || pn < 1 || pn > 65535 {
			k.err(p, "%q has a bad port; write host or host:port", s)
		} else if net.ParseIP(host) == nil && !domainRE.MatchString(host) {
			k.err(p, "%q is neither an IP address nor a host name", s)
		}
	}
	k.files(n.Files)
	for key := range n.Sysctl {
		if !sysctlRE.MatchString(key) {
			k.err("sysctl."+key, "%q is not a sysctl name such as net.ipv4.ip_forward", key)
		}
	}
	for i, m := range n.Modules {
		if !moduleRE.MatchString(m) {
			k.err(fmt.Sprintf("modules[%d]", i), "%q is not a kernel module name (letters, digits, '_' and '-')", m)
		}
	}
	if n.Cluster != nil {
		k.cluster(n.Cluster)
		for key, v := range n.Sysctl {
			if want, ok := boot.KubeletSysctls[key]; ok && v != want {
				k.warn("sysctl."+key, "cluster nodes run with %s=%s, which the kubelet requires (protectKernelDefaults); this value is replaced", key, want)
			}
		}
		if n.Debug.Console && n.Cluster.Role == "server" {
			k.warn("debug.console", "the debug console answers anyone at this server's serial console; it hides the cluster's keys but shows the rest of the node, so leave it off in production")
		}
	}
	if n.Update != nil {
		k.update(n.Update)
	}
	for i, r := range n.Repositories {
		k.repository(fmt.Sprintf("repositories[%d]", i), r)
	}
	return k.warns.done(), k.errs.done()
}

func (k *checker) network(nw *Network) {
	for i, ifc := range nw.Interfaces {
		p := fmt.Sprintf("network.interfaces[%d]", i)
		if ifc.Name == "" && ifc.MAC == "" {
			k.err(p, "give name (eth0, en*) or mac to say which interface this configures")
		}
		if _, err := path.Match(ifc.Name, "x"); err != nil {
			k.err(p+".name", "%q is not a valid name pattern", ifc.Name)
		}
		if ifc.MAC != "" {
			if _, err := net.ParseMAC(ifc.MAC); err != nil {
				k.err(p+".mac", "%q is not a hardware address such as aa:bb:cc:dd:ee:ff", ifc.MAC)
			}
		}
		dhcp := ifc.DHCP4 == nil || *ifc.DHCP4
		if ifc.DHCP4 == nil && len(ifc.Addresses) > 0 {
			dhcp = false
		}
		if !dhcp && len(ifc.Addresses) == 0 {
			k.warn(p, "dhcp4 is off and no addresses are given: the interface comes up without an address")
		}
		for j, a := range ifc.Addresses {
			if a.Addr().IsUnspecified() || a.Addr().IsMulticast() {
				k.err(fmt.Sprintf("%s.addresses[%d]", p, j), "%s cannot be a host address", a)
			}
		}
		k.gateway(p+".gateway4", ifc.Gateway4, ifc.Addresses, true)
		k.gateway(p+".gateway6", ifc.Gateway6, ifc.Addresses, false)
		if ifc.MTU != 0 && (ifc.MTU < 576 || ifc.MTU > 9216) {
			k.err(p+".mtu", "%d is out of range; use 576 to 9216", ifc.MTU)
		}
	}
	for i, s := range nw.DNS.Search {
		if !domainRE.MatchString(s) {
			k.err(fmt.Sprintf("network.dns.search[%d]", i), "%q is not a domain name", s)
		}
	}
	if c := nw.WiFiCountry; c != "" && !countryRE.MatchString(c) {
		k.err("network.wifiCountry", "%q is not a country code; use the two capital letters of ISO 3166 (DE, US, GB)", c)
	}
	seen := map[string]bool{}
	for i, w := range nw.WiFi {
		p := fmt.Sprintf("network.wifi[%d]", i)
		if l := len(w.SSID); l < 1 || l > 32 {
			k.err(p+".ssid", "an SSID is 1 to 32 bytes long, this one is %d", l)
		}
		if seen[w.SSID] {
			k.err(p+".ssid", "%q is listed twice", w.SSID)
		}
		seen[w.SSID] = true
		if l := len(w.PSK); l != 0 && (l < 8 || l > 63) {
			k.err(p+".psk", "a WPA passphrase is 8 to 63 characters long, this one is %d", l)
		} else if strings.IndexFunc(w.PSK, func(r rune) bool { return r < ' ' || r > '~' }) >= 0 {
			k.err(p+".psk", "a WPA passphrase is printable ASCII (space to ~); this one has another character")
		}
	}
	if len(nw.WiFi) > 0 && nw.WiFiCountry == "" {
		k.warn("network.wifiCountry", "no country is set, so the radio keeps to the world domain and leaves out channels (12 and 13, most of 5 GHz) that your access point may use; set the country the node is in")
	}
}

// countryRE is an ISO 3166 alpha-2 code, or 00 for the world domain.
var countryRE = regexp.MustCompile(`^([A-Z]{2}|00)$`)

func (k *checker) gateway(p string, gw IP, addrs []Prefix, v4 bool) {
	if !gw.IsValid() {
		return
	}
	if gw.Is4() != v4 {
		want := map[bool]string{true: "an IPv4", false: "an IPv6"}[v4]
		k.err(p, "%s must be %s address", gw, want)
		return
	}
	for _, a := range addrs {
		if a.Contains(gw.Addr) {
			return
		}
	}
	if len(addrs) == 0 {
		k.err(p, "a gateway needs a static address on the same interface; add addresses: or remove the gateway")
		return
	}
	k.warn(p, "%s is outside every static address's subnet; it is reached with an on-link route", gw)
}
