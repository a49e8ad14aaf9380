package server

import (
	"fmt"
	"net"
	"sort"
	"strings"

	"github.com/cairn-os/cairn/cluster/identity"
)

// component is one child process: its cairnd entry point and flags.
type component struct {
	Name string
	Args []string
}

// flags renders defaults overridden by the config's extraArgs for name
// (flag names without dashes, as in extraArgs: {kube-apiserver: ["v=2"]}).
func flags(defaults map[string]string, extra []string) []string {
	m := map[string]string{}
	for k, v := range defaults {
		m[k] = v
	}
	for _, e := range extra {
		k, v, _ := strings.Cut(strings.TrimLeft(e, "-"), "=")
		m[k] = v
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = "--" + k + "=" + m[k]
	}
	return out
}

func (p Paths) components(etcd string, advertise net.IP, extra map[string][]string) []component {
	api := map[string]string{
		"advertise-address":                  advertise.String(),
		"bind-address":                       "0.0.0.0",
		"secure-port":                        fmt.Sprint(APIPort),
		"etcd-servers":                       etcd,
		"storage-backend":                    "etcd3",
		"tls-cert-file":                      p.tls("apiserver.crt"),
		"tls-private-key-file":               p.tls("apiserver.key"),
		"client-ca-file":                     p.tls(identity.FileClientCA),
		"kubelet-client-certificate":         p.tls("apiserver-kubelet-client.crt"),
		"kubelet-client-key":                 p.tls("apiserver-kubelet-client.key"),
		"requestheader-client-ca-file":       p.tls(identity.FileRequestHeaderCA),
		"requestheader-allowed-names":        "front-proxy-client",
		"requestheader-extra-headers-prefix": "X-Remote-Extra-",
		"requestheader-group-headers":        "X-Remote-Group",
		"requestheader-username-headers":     "X-Remote-User",
		"proxy-client-cert-file":             p.tls("front-proxy-client.crt"),
		"proxy-client-key-file":              p.tls("front-proxy-client.key"),
		"service-account-issuer":             "https://kubernetes.default.svc." + ClusterDomain,
		"api-audiences":                      "https://kubernetes.default.svc." + ClusterDomain,
		"service-account-key-file":           p.tls("service-account.pub"),
		"service-account-signing-key-file":   p.tls(identity.FileServiceAccountKey),
		"service-cluster-ip-range":           ServiceCIDR,
		"authorization-mode":                 "Node,RBAC",
		"enable-admission-plugins":           "NodeRestriction",
		"admission-control-config-file":      p.admissionConfig(),
		"anonymous-auth":                     "false",
		"encryption-provider-config":         p.encryptionConfig(),
		"audit-policy-file":                  p.auditPolicy(),
		"audit-log-path":                     AuditLog,
		"audit-log-maxage":                   "30",
		"audit-log-maxbackup":                "5",
		"audit-log-maxsize":                  "50",
		"allow-privileged":                   "true",
		"profiling":                          "false",
		"enable-bootstrap-token-auth":        "true",
	}
	cm := map[string]string{
		"kubeconfig":                       p.KubeconfigFor("kube-controller-manager"),
		"authentication-kubeconfig":        p.KubeconfigFor("kube-controller-manager"),
		"authorization-kubeconfig":         p.KubeconfigFor("kube-controller-manager"),
		"bind-address":                     "127.0.0.1",
		"secure-port":                      "10257",
		"service-account-private-key-file": p.tls(identity.FileServiceAccountKey),
		"root-ca-file":                     p.tls(identity.FileServerCA),
		"cluster-signing-cert-file":        p.tls(identity.FileClientCA),
		"cluster-signing-key-file":         p.tls(identity.FileClientCAKey),
		"use-service-account-credentials":  "true",
		"allocate-node-cidrs":              "true",
		"cluster-cidr":                     ClusterCIDR,
		"service-cluster-ip-range":         ServiceCIDR,
		"leader-elect":                     "false",
		"controllers":                      "*,tokencleaner",
		"profiling":                        "false",
	}
	sched := map[string]string{
		"kubeconfig":                p.KubeconfigFor("kube-scheduler"),
		"authentication-kubeconfig": p.KubeconfigFor("kube-scheduler"),
		"authorization-kubeconfig":  p.KubeconfigFor("kube-scheduler"),
		"bind-address":              "127.0.0.1",
		"secure-port":               "10259",
		"leader-elect":              "false",
		"profiling":                 "false",
	}
	return []component{
		{"kube-apiserver", flags(api, extra["kube-apiserver"])},
		{"kube-controller-manager", flags(cm, extra["kube-controller-manager"])},
		{"kube-scheduler", flags(sched, extra["kube-scheduler"])},
	}
}
