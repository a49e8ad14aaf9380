package join

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
)

// Reserved are the names and addresses that belong to the cluster's
// servers and services. An agent that joined under one would hold a
// kubelet serving certificate for it, so the endpoint refuses them, and
// also the name localhost and loopback, unspecified, multicast and
// broadcast addresses, whatever Reserved holds.
type Reserved struct {
	Names []string       // the server's node name and the apiserver's DNS names
	IPs   []net.IP       // the server's addresses and the apiserver's IP names
	Nets  []netip.Prefix // ranges that hold no node: services, pods
}

var errReserved = errors.New("the name or address belongs to the cluster's servers")

func (rs Reserved) checkName(node string) error {
	if node == "localhost" || slices.ContainsFunc(rs.Names, func(n string) bool { return strings.EqualFold(n, node) }) {
		return fmt.Errorf("%w: no agent may join as node %q; give this machine another hostname", errReserved, node)
	}
	return nil
}

func (rs Reserved) checkIP(ip net.IP) error {
	a, _ := netip.AddrFromSlice(ip)
	a = a.Unmap()
	switch {
	case ip.IsLoopback() || ip.IsUnspecified() || ip.IsMulticast() || ip.Equal(net.IPv4bcast):
		return fmt.Errorf("%w: %s is a loopback, unspecified, multicast or broadcast address; set cluster.nodeIP to the agent's own address", errReserved, ip)
	case slices.ContainsFunc(rs.IPs, ip.Equal):
		return fmt.Errorf("%w: %s is the server's address; set cluster.nodeIP to the agent's own address", errReserved, ip)
	}
	for _, n := range rs.Nets {
		if n.Contains(a) {
			return fmt.Errorf("%w: %s is in %s, which holds no node; set cluster.nodeIP to the agent's own address", errReserved, ip, n)
		}
	}
	return nil
}

// parseIPs reads a join's node addresses and checks each.
func (rs Reserved) parseIPs(ss []string) ([]net.IP, error) {
	if len(ss) == 0 {
		return nil, fmt.Errorf("%w: the request names no node address", errBadRequest)
	}
	var ips []net.IP
	for _, s := range ss {
		ip := net.ParseIP(s)
		if ip == nil {
			return nil, fmt.Errorf("%w: %q is not an IP address", errBadRequest, s)
		}
		if err := rs.checkIP(ip); err != nil {
			return nil, err
		}
		ips = append(ips, ip)
	}
	return ips, nil
}

// checkRequest refuses a certificate request that names more than the
// certificate will be for: the certificate takes its names from the join,
// never from the request, and a request that asks for others is not one
// this package's agents send.
func checkRequest(csr *x509.CertificateRequest, names []string, ips []net.IP) error {
	for _, n := range csr.DNSNames {
		if !slices.Contains(names, n) {
			return fmt.Errorf("%w: a certificate request asks for the name %q, which the join does not grant; send requests without names (the server sets them)", errBadRequest, n)
		}
	}
	for _, ip := range csr.IPAddresses {
		if !slices.ContainsFunc(ips, ip.Equal) {
			return fmt.Errorf("%w: a certificate request asks for the address %s, which the join does not grant; send requests without addresses (the server sets them)", errBadRequest, ip)
		}
	}
	if len(csr.URIs) > 0 || len(csr.EmailAddresses) > 0 {
		return fmt.Errorf("%w: a certificate request asks for URIs or e-mail addresses; send requests without names (the server sets them)", errBadRequest)
	}
	return nil
}
