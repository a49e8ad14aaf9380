package boot

import (
	"encoding/json"
	"fmt"
	"os"
)

// BuildInfo is baked into the root and the initramfs at InfoPath; init
// reads it for the boot family, the smallest data partition, its time
// floor, the modules to load and its banner.
type BuildInfo struct {
	Board    string   `json:"board"`
	Family   Family   `json:"family"`
	Arch     string   `json:"arch"`
	Version  string   `json:"version"`
	Kernel   string   `json:"kernel"`
	Epoch    int64    `json:"epoch"`
	Modules  []string `json:"modules"`
	Watchdog string   `json:"watchdog,omitempty"`
	MinData  int64    `json:"minDataBytes"`
	// Role and Cluster are the config's cluster.role and cluster name, when
	// it has a cluster: section; cairn vm reads them from the image.
	Role    string `json:"role,omitempty"`
	Cluster string `json:"cluster,omitempty"`
}

// Paths in the root that the builder writes and init reads.
const (
	ConfigPath = "/usr/lib/cairn/config.yaml"
	InfoPath   = "/usr/lib/cairn/build.json"
	// ClusterDir holds the cluster secrets baked into the image: the whole
	// bundle on servers, only the join token on agents. Files are 0600.
	ClusterDir = "/usr/lib/cairn/cluster"
	// FleetDir holds the node API's credentials (the fleet's CA
	// certificate, the node's certificate and key) and the public key that
	// signs update bundles, from the operator's fleet keys. Files are 0600.
	FleetDir = "/usr/lib/cairn/fleet"
	// ImagesDir holds container image archives (the pause image and the
	// config's cluster.images), imported by cairnd at every start.
	ImagesDir = "/usr/lib/cairn/images"
	// ManifestsDir holds the Kubernetes manifests a server applies.
	ManifestsDir = "/usr/lib/cairn/manifests"
	// UpstreamDir holds upstream programs (kube-apiserver, kubelet,
	// containerd, etcd, ...) that replace cairnd's built-in components of
	// the same name: the way kubeadm runs Kubernetes, in images built with
	// cairn build --upstream, for side-by-side comparisons.
	UpstreamDir = "/usr/lib/cairn/upstream"
	// PauseImage is the pod sandbox image the builder makes.
	PauseImage = "cairn.local/pause:1"
)

// UpdateState is what the updater keeps on the data partition: what each
// slot holds, which is armed, and the last update's result.
const UpdateState = "/var/lib/cairn/update/state.json"

// State on the data partition that holds keys: a server's (its CAs'
// certificates, kine's database, the kubeconfigs of its components) and an
// agent's (its node password and certificates).
const (
	ServerDir = "/var/lib/cairn/server"
	AgentDir  = "/var/lib/cairn/agent"
)

// CardConfig is the config a user may put on the first (FAT) partition after
// flashing, from any OS; its sections replace the baked-in config's. Stage 1
// copies it to CardConfigCopy, where stage 2 reads it.
const (
	CardConfig     = "cairn.yaml"
	CardConfigCopy = "/run/cairn/boot-partition/cairn.yaml"
	// EffectiveConfig is the config init resolved from its sources (baked
	// in, the card's cairn.yaml) and checked; cairnd reads only this.
	EffectiveConfig = "/run/cairn/config.yaml"
)

// ReadInfo reads the BuildInfo at InfoPath.
func ReadInfo() (BuildInfo, error) {
	var info BuildInfo
	data, err := os.ReadFile(InfoPath)
	if err != nil {
		return info, fmt.Errorf("the build's description: %w", err)
	}
	if err := json.Unmarshal(data, &info); err != nil {
		return info, fmt.Errorf("%s: %w", InfoPath, err)
	}
	return info, info.Family.Check()
}

// KubeletSysctls are the kernel settings the kubelet insists on
// (protectKernelDefaults): cairnd sets them on every cluster node before
// the kubelet starts, over the config's sysctl section.
var KubeletSysctls = map[string]string{
	"vm.overcommit_memory":      "1",
	"vm.panic_on_oom":           "0",
	"kernel.panic":              "10",
	"kernel.panic_on_oops":      "1",
	"kernel.keys.root_maxkeys":  "1000000",
	"kernel.keys.root_maxbytes": "25000000",
}
