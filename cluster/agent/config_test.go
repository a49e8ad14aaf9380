package agent

import (
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"
	"gopkg.in/yaml.v3"
)

var testNode = Node{Name: "edge-1", IP: "192.168.1.20", ClusterCIDR: "10.42.0.0/16", ClusterDNS: "10.43.0.10", Domain: "cluster.local",
	ClientCA: "/run/ca.crt", TLSCert: "/run/serving.crt", TLSKey: "/run/serving.key", Labels: map[string]string{"zone": "b", "a": "1"}, Taints: []string{"edge=true:NoSchedule"}}

// TestKubeletConfig reads the kubelet's config back as YAML and checks the
// settings that make it safe and fit an edge node.
func TestKubeletConfig(t *testing.T) {
	var c map[string]any
	if err := yaml.Unmarshal([]byte(kubeletConfig(testNode)), &c); err != nil {
		t.Fatal(err)
	}
	auth := c["authentication"].(map[string]any)
	for path, want := range map[string]any{
		"kind":                  "KubeletConfiguration",
		"authorization.mode":    "Webhook",
		"readOnlyPort":          0,
		"protectKernelDefaults": true,
		"seccompDefault":        true,
		"tlsMinVersion":         "VersionTLS12",
		"tlsCertFile":           "/run/serving.crt",
		"clusterDNS":            []any{"10.43.0.10"},
		"rotateCertificates":    false,
		"healthzBindAddress":    "127.0.0.1",
	} {
		if got := lookup(c, path); !equal(got, want) {
			t.Errorf("%s: %v, want %v", path, got, want)
		}
	}
	if auth["anonymous"].(map[string]any)["enabled"] != false || auth["x509"].(map[string]any)["clientCAFile"] != "/run/ca.crt" {
		t.Errorf("authentication: %v", auth)
	}
	flags := kubeletFlags(testNode, "/run/kubelet.yaml", "/run/kubelet.kubeconfig")
	if flags["node-labels"] != "a=1,zone=b" || flags["register-with-taints"] != "edge=true:NoSchedule" || flags["node-ip"] != "192.168.1.20" {
		t.Errorf("flags: %v", flags)
	}
}

// TestContainerdConfig reads containerd's config back as TOML.
func TestContainerdConfig(t *testing.T) {
	var c map[string]any
	if err := toml.Unmarshal([]byte(containerdConfig("/run/cairn/agent")), &c); err != nil {
		t.Fatal(err)
	}
	plugins := c["plugins"].(map[string]any)
	images := plugins["io.containerd.cri.v1.images"].(map[string]any)
	cni := plugins["io.containerd.cri.v1.runtime"].(map[string]any)["cni"].(map[string]any)
	if c["version"] != int64(3) || c["root"] != ContainerdRoot || c["grpc"].(map[string]any)["address"] != ContainerdSock {
		t.Errorf("containerd: %v", c)
	}
	if images["snapshotter"] != "overlayfs" || images["pinned_images"].(map[string]any)["sandbox"] != "cairn.local/pause:1" {
		t.Errorf("images: %v", images)
	}
	if cni["conf_dir"] != "/run/cairn/agent/cni" || !strings.HasSuffix(cni["conf_template"].(string), "cni.template") {
		t.Errorf("cni: %v", cni)
	}
}

func lookup(m map[string]any, path string) any {
	var v any = m
	for _, k := range strings.Split(path, ".") {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[k]
	}
	return v
}

func equal(a, b any) bool {
	as, aok := a.([]any)
	bs, bok := b.([]any)
	if aok && bok {
		if len(as) != len(bs) {
			return false
		}
		for i := range as {
			if as[i] != bs[i] {
				return false
			}
		}
		return true
	}
	return a == b
}
