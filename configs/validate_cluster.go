package configs

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"time"

	"github.com/cairn-os/cairn/internal/jointoken"
)

// DefaultCluster is the cluster name when the config gives none.
const DefaultCluster = "default"

// ClusterName is the config's cluster name or DefaultCluster.
func (c *Cluster) ClusterName() string {
	if c.Name == "" {
		return DefaultCluster
	}
	return c.Name
}

func (k *checker) cluster(c *Cluster) {
	if c.Name != "" && !hostnameRE.MatchString(c.Name) {
		k.err("cluster.name", "%q is not a cluster name: use 1 to 63 lower-case letters, digits and '-', not starting or ending with '-'", c.Name)
	}
	if c.Token != "" {
		if _, err := jointoken.Parse(c.Token); err != nil {
			k.err("cluster.token", "%v", err)
		}
	}
	switch c.Role {
	case "server", "agent":
	case "":
		k.err("cluster.role", "required; use server or agent")
	default:
		k.err("cluster.role", "%q is not a role; use server or agent", c.Role)
	}
	if c.Role == "agent" && c.Server == "" {
		k.err("cluster.server", "an agent needs the URL of the server it joins, such as https://10.0.0.1:6443")
	}
	if c.Server != "" {
		u, err := url.Parse(c.Server)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			k.err("cluster.server", "%q is not an https URL such as https://10.0.0.1:6443", redactURL(c.Server))
		}
	}
	if c.NodeIP.IsValid() && !c.NodeIP.Is4() {
		k.err("cluster.nodeIP", "%s is not an IPv4 address; the pod network between nodes runs over IPv4", c.NodeIP)
	}
	for key, v := range c.Labels {
		if !labelKeyRE.MatchString(key) || len(v) > 63 {
			k.err("cluster.labels."+key, "%q=%q is not a valid Kubernetes label", key, v)
		}
	}
	for i, t := range c.Taints {
		if !taintRE.MatchString(t) {
			k.err(fmt.Sprintf("cluster.taints[%d]", i), "%q is not a taint; write key=value:Effect or key:Effect with Effect NoSchedule, PreferNoSchedule or NoExecute", t)
		}
	}
	if len(c.Manifests) > 0 && c.Role == "agent" {
		k.warn("cluster.manifests", "agents apply no manifests; give them to a server")
	}
	if c.Datastore != "" {
		u, err := url.Parse(c.Datastore)
		ok := err == nil
		if ok {
			switch u.Scheme {
			case "sqlite", "postgres", "postgresql", "mysql", "http", "https":
			default:
				ok = false
			}
		}
		if !ok {
			k.err("cluster.datastore", "%q is not a datastore URL; use sqlite://, postgres://, mysql:// or https:// (etcd)", redactURL(c.Datastore))
		}
		if c.Role == "agent" {
			k.warn("cluster.datastore", "agents have no datastore; this is ignored")
		}
	}
}

func (k *checker) update(u *Update) {
	for i, key := range u.PublicKeys {
		b, err := base64.StdEncoding.DecodeString(key)
		if err != nil || len(b) != 32 {
			k.err(fmt.Sprintf("update.publicKeys[%d]", i), "not an ed25519 public key: 32 bytes, base64-encoded")
		}
	}
	if u.TrialSeconds != 0 && (u.TrialSeconds < 30 || u.TrialSeconds > 86400) {
		k.err("update.trialSeconds", "%d is out of range: 30 to 86400 seconds", u.TrialSeconds)
	}
	if u.PollSeconds != 0 && (u.PollSeconds < 30 || u.PollSeconds > 7*86400) {
		k.err("update.pollSeconds", "%d is out of range: 30 to 604800 seconds", u.PollSeconds)
	}
	if u.URL != "" {
		if p, err := url.Parse(u.URL); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			k.err("update.url", "%q is not an http or https URL", redactURL(u.URL))
		}
	}
}

func (k *checker) repository(p string, r Repository) {
	if len(r.URIs) == 0 {
		k.err(p+".uris", "required: at least one archive URL")
	}
	for i, s := range r.URIs {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "file") {
			k.err(fmt.Sprintf("%s.uris[%d]", p, i), "%q is not an http, https or file URL", redactURL(s))
		}
	}
	if len(r.Suites) == 0 {
		k.err(p+".suites", "required: at least one suite, such as bookworm")
	}
}

// Poll is how often the node polls update.url.
func (u *Update) Poll() time.Duration {
	if u == nil || u.PollSeconds == 0 {
		return time.Hour
	}
	return time.Duration(u.PollSeconds) * time.Second
}

// Trial is how long a slot on trial has to become healthy.
func (u *Update) Trial() time.Duration {
	if u == nil || u.TrialSeconds == 0 {
		return 10 * time.Minute
	}
	return time.Duration(u.TrialSeconds) * time.Second
}
