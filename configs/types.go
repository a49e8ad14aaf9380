package configs

// APIVersion and Kind identify the one document kind this package reads.
const (
	APIVersion = "cairn.dev/v1alpha1"
	Kind       = "Node"
)

// Node is the whole configuration of one machine.
type Node struct {
	APIVersion   string            `yaml:"apiVersion" jsonschema:"required,enum=cairn.dev/v1alpha1" jsonschema_description:"Document version; must be cairn.dev/v1alpha1."`
	Kind         string            `yaml:"kind" jsonschema:"required,enum=Node" jsonschema_description:"Document kind; must be Node."`
	Hostname     string            `yaml:"hostname,omitempty" jsonschema_description:"Host name (RFC 1123 label, at most 63 characters). Default: cairn-<last 3 bytes of the first MAC>."`
	Network      Network           `yaml:"network,omitempty" jsonschema_description:"Network interfaces and DNS. Default: DHCPv4 on every Ethernet interface."`
	Time         Time              `yaml:"time,omitempty" jsonschema_description:"Time synchronisation."`
	Files        []File            `yaml:"files,omitempty" jsonschema_description:"Files written at every boot under /etc, /var or /run (the root is read-only)."`
	Sysctl       map[string]string `yaml:"sysctl,omitempty" jsonschema_description:"Kernel parameters set at boot, as in sysctl.conf (net.ipv4.ip_forward: \"1\")."`
	Modules      []string          `yaml:"modules,omitempty" jsonschema_description:"Extra kernel modules loaded at boot (with their dependencies)."`
	Cluster      *Cluster          `yaml:"cluster,omitempty" jsonschema_description:"The Kubernetes node this machine runs."`
	Update       *Update           `yaml:"update,omitempty" jsonschema_description:"Over-the-air updates: signed bundles pushed with cairn upgrade (docs/adr/0009)."`
	Repositories []Repository      `yaml:"repositories,omitempty" jsonschema_description:"Debian-format package repositories for the build. Default: the build host's apt sources."`
	Debug        Debug             `yaml:"debug,omitempty" jsonschema_description:"Debugging aids; leave off in production."`
}

// Network configures interfaces and name resolution.
type Network struct {
	Interfaces  []Interface `yaml:"interfaces,omitempty" jsonschema_description:"Interfaces by name or match; the first entry that matches an interface configures it."`
	DNS         DNS         `yaml:"dns,omitempty" jsonschema_description:"Resolver settings merged with those learnt by DHCP."`
	WiFi        []WiFi      `yaml:"wifi,omitempty" jsonschema_description:"Wi-Fi networks, the most preferred first. The node joins the first one it finds (WPA2-PSK, WPA3-SAE or open) on every Wi-Fi link that interfaces covers, and then gets its address as that link's entry says (default DHCPv4)."`
	WiFiCountry string      `yaml:"wifiCountry,omitempty" jsonschema_description:"Where the node's radio is, as an ISO 3166 country code (DE, US, GB): the channels and power its law allows. Default: the world domain, which leaves out some channels."`
}

// Interface configures one or more links.
type Interface struct {
	Name      string   `yaml:"name,omitempty" jsonschema_description:"Interface name, or a shell pattern such as en* or eth*."`
	MAC       string   `yaml:"mac,omitempty" jsonschema_description:"Match by hardware address (aa:bb:cc:dd:ee:ff) instead of name."`
	DHCP4     *bool    `yaml:"dhcp4,omitempty" jsonschema_description:"Use DHCPv4 (with lease renewal). Default: true when no addresses are given."`
	Addresses []Prefix `yaml:"addresses,omitempty" jsonschema_description:"Static addresses in CIDR form (192.168.1.10/24, 2001:db8::5/64)."`
	Gateway4  IP       `yaml:"gateway4,omitempty" jsonschema_description:"Default IPv4 gateway for static addresses."`
	Gateway6  IP       `yaml:"gateway6,omitempty" jsonschema_description:"Default IPv6 gateway for static addresses."`
	MTU       int      `yaml:"mtu,omitempty" jsonschema:"minimum=576,maximum=9216" jsonschema_description:"Link MTU in bytes."`
}

// DNS holds resolver settings.
type DNS struct {
	Servers []IP     `yaml:"servers,omitempty" jsonschema_description:"Name servers, tried before those from DHCP."`
	Search  []string `yaml:"search,omitempty" jsonschema_description:"Search domains."`
}

// WiFi is one wireless network.
type WiFi struct {
	SSID   string `yaml:"ssid" jsonschema:"required" jsonschema_description:"Network name (1 to 32 bytes)."`
	PSK    string `yaml:"psk,omitempty" jsonschema_description:"Passphrase (8 to 63 printable ASCII characters), for WPA2-PSK and WPA3-SAE alike; empty for an open network."`
	Hidden bool   `yaml:"hidden,omitempty" jsonschema_description:"The network does not broadcast its name, so the node asks for it by name."`
}

// Time configures the clock.
type Time struct {
	NTP []string `yaml:"ntp,omitempty" jsonschema_description:"NTP servers (host or host:port). Default: the servers DHCP offers; with none, the clock keeps its floor (build date or last saved time)."`
}

// File is written by init at boot.
type File struct {
	Path    string   `yaml:"path" jsonschema:"required" jsonschema_description:"Absolute path under /etc, /var or /run, outside what init and cairnd write themselves (/etc/hostname, /etc/resolv.conf, /etc/passwd, /etc/group, /run/cairn, /var/lib/cairn, /var/lib/containerd, /run/containerd). The file is replaced whole; no symbolic link on the way is followed."`
	Content string   `yaml:"content,omitempty" jsonschema_description:"Text content."`
	Base64  string   `yaml:"base64,omitempty" jsonschema_description:"Binary content, base64-encoded (instead of content)."`
	Mode    FileMode `yaml:"mode,omitempty" jsonschema_description:"Permissions in octal, as a string (\"0644\"), from 0000 to 0777: no setuid, setgid or sticky bit. Default: 0644."`
	Owner   string   `yaml:"owner,omitempty" jsonschema_description:"Numeric uid:gid. Default: 0:0."`
}

// Cluster selects and configures the Kubernetes role.
type Cluster struct {
	Name      string              `yaml:"name,omitempty" jsonschema_description:"Cluster name. Images of one cluster share its secrets, kept by cairn on the build machine (CAIRN_CLUSTERS, else ~/.config/cairn/clusters/NAME). Default: default."`
	Role      string              `yaml:"role" jsonschema:"required,enum=server,enum=agent" jsonschema_description:"server (control plane and node) or agent (node that joins a server)."`
	Server    string              `yaml:"server,omitempty" jsonschema_description:"URL of the server an agent joins (https://host:6443); required for agents."`
	Token     string              `yaml:"token,omitempty" jsonschema_description:"Join token (cairn1.CAHASH.SECRET); it pins the server's CA. Leave it empty and the build fills it from the cluster's secrets; set it for an agent of a cluster whose secrets are on another machine."`
	NodeIP    IP                  `yaml:"nodeIP,omitempty" jsonschema_description:"IPv4 address other nodes reach this node at: the kubelet's node IP, the pod network's VXLAN endpoint and, on a server, the API's advertised address. Default: a server's first IPv4 address; an agent's address on the route to its server."`
	Labels    map[string]string   `yaml:"labels,omitempty" jsonschema_description:"Node labels."`
	Taints    []string            `yaml:"taints,omitempty" jsonschema_description:"Node taints as key=value:Effect or key:Effect."`
	ExtraArgs map[string][]string `yaml:"extraArgs,omitempty" jsonschema_description:"Extra flags per component (kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy, containerd), as name=value. Logging flags (v, vmodule) given to kube-apiserver or the kubelet also apply to the Kubernetes components that share its process (not to containerd)."`
	Images    []string            `yaml:"images,omitempty" jsonschema_description:"Container images baked into the image and imported into containerd at boot, pinned. An entry is an archive (OCI layout or docker save .tar for the board's architecture; a path relative to the config file, ending in .tar or starting with . or /) or a registry reference (nginx:1.27, registry.example:5000/app@sha256:...), which the build pulls for the board's architecture into its cache (credentials from docker's config.json, mirrors and CAs from CAIRN_REGISTRIES or ~/.config/cairn/registries/HOST/hosts.toml). Pods use them with imagePullPolicy: Never or IfNotPresent, so no registry is needed on the node."`
	Manifests []string            `yaml:"manifests,omitempty" jsonschema_description:"Kubernetes manifests (YAML, one object per document) baked into a server image and applied at every server start, then again every minute, so objects deleted or changed by hand come back; objects of manifests removed by an update are deleted. Paths are relative to the config file."`
	Datastore string              `yaml:"datastore,omitempty" jsonschema_description:"kine datastore URL for servers (postgres://, mysql://, https:// for etcd). Default: SQLite on the data partition."`
}

// Update configures over-the-air updates.
type Update struct {
	PublicKeys []string `yaml:"publicKeys,omitempty" jsonschema_description:"ed25519 public keys (base64) whose signatures on update bundles the node accepts. Default: the fleet's key (cairn keys generate) when the image was built with one."`
	URL        string   `yaml:"url,omitempty" jsonschema_description:"A channel the node polls for bundles (http or https): a file that cairn publish writes, signed with the fleet's key. The node installs the bundle it names when that is newer than what it runs."`
	// PollSeconds is how often the node polls URL.
	PollSeconds int `yaml:"pollSeconds,omitempty" jsonschema_description:"How often the node polls update.url, in seconds, give or take a tenth. Default 3600."`
	// TrialSeconds bounds a trial boot.
	TrialSeconds int `yaml:"trialSeconds,omitempty" jsonschema_description:"How long a new slot on trial has to become healthy (network up; with a cluster, its Node Ready) before the node gives it up and boots the committed slot again. Default 600."`
}

// Repository is a Debian-format apt source.
type Repository struct {
	URIs       []string `yaml:"uris" jsonschema:"required" jsonschema_description:"Base URLs of the archive (http, https or file)."`
	Suites     []string `yaml:"suites" jsonschema:"required" jsonschema_description:"Suites (bookworm, bookworm-updates, ...)."`
	Components []string `yaml:"components,omitempty" jsonschema_description:"Components. Default: main plus what the board needs (non-free-firmware for Raspberry Pi)."`
	Keyring    string   `yaml:"keyring,omitempty" jsonschema_description:"OpenPGP keyring file (binary or armored) that signs the suites. Default: the host's Debian archive keyring."`
}

// Debug holds opt-in debugging aids.
type Debug struct {
	Console bool `yaml:"console,omitempty" jsonschema_description:"Answer a few read-only commands (cat, ls, mounts, df, ip, date) on the serial console. Also enabled by cairn.debug=1 on the kernel command line."`
}
