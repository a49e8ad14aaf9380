package server

import (
	"fmt"
	"net"

	"github.com/cairn-os/cairn/cluster/identity"
	"github.com/cairn-os/cairn/cluster/supervise"
)

// ControlPlane is cairnd's entry point that runs the three control-plane
// components in one process (see cluster/components).
const ControlPlane = "control-plane"

// components returns kube-apiserver's, kube-controller-manager's and
// kube-scheduler's arguments, in the order they start.
func (p Paths) components(etcd string, advertise net.IP, extra map[string][]string) []supervise.Component {
	api := map[string]string{
		"advertise-address":             advertise.String(),
		"bind-address":                  "0.0.0.0",
		"secure-port":                   fmt.Sprint(APIPort),
		"etcd-servers":                  etcd,
		"storage-backend":               "etcd3",
		"tls-cert-file":                 p.tls("apiserver.crt"),
		"tls-private-key-file":          p.tls("apiserver.key"),
		"client-ca-file":                p.tls(identity.FileClientCA),
		"kubelet-client-certificate":    p.tls("apiserver-kubelet-client.crt"),
		"kubelet-client-key":            p.tls("apiserver-kubelet-client.key"),
		"kubelet-certificate-authority": p.tls(identity.FileKubeletServingCA),
		// Edge sites rarely have DNS for their nodes; the node IP always works.
		"kubelet-preferred-address-types":    "InternalIP,Hostname,InternalDNS,ExternalDNS,ExternalIP",
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
		"flex-volume-plugin-dir":           "/var/lib/kubelet/volumeplugins", // the default is on the read-only root
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
	return []supervise.Component{
		{Name: "kube-apiserver", Args: supervise.Flags(api, extra["kube-apiserver"])},
		{Name: "kube-controller-manager", Args: supervise.Flags(cm, extra["kube-controller-manager"])},
		{Name: "kube-scheduler", Args: supervise.Flags(sched, extra["kube-scheduler"])},
	}
}
