package vmtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/cairn-os/cairn/cluster/identity"
	"github.com/cairn-os/cairn/image/oci"
)

// TestClusterSecretsInImages builds a server and an agent of one cluster and
// checks what each image carries (unsquashfs), the admin kubeconfig left
// next to the server image, and that a second build reuses the secrets.
func TestClusterSecretsInImages(t *testing.T) {
	need(t, "unsquashfs", "sfdisk")
	clusters := t.TempDir()
	t.Setenv("CAIRN_CLUSTERS", clusters)
	server := "apiVersion: cairn.dev/v1alpha1\nkind: Node\nhostname: srv\ncluster:\n  name: lab\n  role: server\n"
	agent := "apiVersion: cairn.dev/v1alpha1\nkind: Node\nhostname: agt\ncluster:\n  name: lab\n  role: agent\n  server: https://10.0.2.2:6443\n"

	srvDir := t.TempDir()
	// Upstream programs (make bench): a link to one is followed, a folder skipped.
	up := t.TempDir()
	os.WriteFile(filepath.Join(srvDir, "etcd-program"), []byte("#!/bin/sh\n"), 0o644)
	os.Symlink(filepath.Join(srvDir, "etcd-program"), filepath.Join(up, "etcd"))
	os.Mkdir(filepath.Join(up, "folder"), 0o755)
	img := buildImage(t, "qemu-arm64", server, srvDir, "--upstream", up)
	bundle, err := identity.Load(filepath.Join(clusters, "lab"))
	if err != nil {
		t.Fatalf("no bundle after the first build: %v", err)
	}
	list := rootListing(t, img)
	for _, f := range []string{identity.FileServerCAKey, identity.FileClientCAKey, identity.FileKubeletServingKey, identity.FileServiceAccountKey, identity.FileEncryptionKey, identity.FileToken} {
		if !regexp.MustCompile(`-rw------- 0/0 +\d+ \S+ \S+ squashfs-root/usr/lib/cairn/cluster/` + regexp.QuoteMeta(f) + `\n`).MatchString(list) {
			t.Errorf("server root lacks cluster/%s as 0600 root:\n%s", f, grepLines(list, "cluster"))
		}
	}
	// The node runtime: Debian's runc, CNI plugins and iptables with their
	// libraries, the shim, cairnd's names, and the pause image cairn built.
	for _, f := range []string{"usr/sbin/runc", "usr/lib/cni/bridge", "usr/lib/cni/host-local", "usr/lib/cni/portmap",
		"usr/sbin/xtables-nft-multi", "usr/sbin/iptables-restore -> xtables-nft-multi", "bin/mount",
		"usr/bin/cairnd", "usr/bin/containerd-shim-runc-v2", "usr/bin/kubelet -> cairnd", "usr/bin/containerd -> cairnd",
		"libseccomp.so.2", "xtables/libxt_comment.so", "usr/lib/cairn/images/pause.tar"} {
		if len(grepLines(list, f)) == 0 {
			t.Errorf("server root lacks %s", f)
		}
	}
	if !regexp.MustCompile(`-rwxr-xr-x 0/0 +\d+ \S+ \S+ squashfs-root/usr/lib/cairn/upstream/etcd\n`).MatchString(list) || len(grepLines(list, "upstream/folder")) > 0 {
		t.Errorf("the upstream folder was not baked in as its programs:\n%s", grepLines(list, "upstream"))
	}
	pause := filepath.Join(t.TempDir(), "pause.tar")
	os.WriteFile(pause, []byte(rootFile(t, img, "usr/lib/cairn/images/pause.tar")), 0o644)
	if info, err := oci.Inspect(pause); err != nil || !slices.Equal(info.Names, []string{"cairn.local/pause:1"}) || !slices.Equal(info.Archs, []string{"arm64"}) {
		t.Errorf("pause image: %+v %v", info, err)
	}
	kc := filepath.Join(srvDir, "kubeconfig")
	st, err := os.Stat(kc)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("kubeconfig next to the server image: %v %v", err, st)
	}
	kcfg, err := identity.ParseKubeconfig(must(os.ReadFile(kc)))
	if err != nil {
		t.Fatal(err)
	}
	if string(kcfg.CAPEM) != string(bundle.ServerCA.CertPEM) || kcfg.Server != "https://127.0.0.1:6443" {
		t.Errorf("kubeconfig cluster: %s %q", kcfg.CAPEM, kcfg.Server)
	}

	// The agent carries the token and nothing else of the bundle.
	agtDir := t.TempDir()
	img = buildImage(t, "qemu-arm64", agent, agtDir)
	list = rootListing(t, img)
	if got := grepLines(list, "usr/lib/cairn/cluster/"); len(got) != 1 || !strings.HasSuffix(got[0], "cluster/token") {
		t.Errorf("agent root cluster files: %v", got)
	}
	if _, err := os.Stat(filepath.Join(agtDir, "kubeconfig")); err == nil {
		t.Error("an agent build wrote a kubeconfig")
	}
	token := rootFile(t, img, "usr/lib/cairn/cluster/token")
	if strings.TrimSpace(token) != bundle.Token() {
		t.Errorf("agent token %q, want the cluster's", token)
	}
	again, err := identity.Load(filepath.Join(clusters, "lab"))
	if err != nil || again.Token() != bundle.Token() {
		t.Errorf("the second build did not reuse the bundle: %v", err)
	}

	// A token from another cluster on a server is refused with its place.
	bad := server + "  token: cairn1." + strings.Repeat("ab", 32) + ".0123456789abcdef0123\n"
	cfg := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(cfg, []byte(bad), 0o644)
	msg, err := cairn(t, "build", "--board", "qemu-arm64", "--config", cfg, "--output", filepath.Join(t.TempDir(), "x.img"), "--bin-dir", deviceBinaries(t))
	if err == nil || !strings.Contains(err.Error()+msg, "bad.yaml:7:10: cluster.token is not the token of cluster \"lab\"") {
		t.Errorf("foreign token: %v\n%s", err, msg)
	}
}

// rootListing is `unsquashfs -lln` of slot A's root in a UEFI image.
func rootListing(t *testing.T, img string) string {
	t.Helper()
	_, parts := partitions(t, img)
	return run(t, "unsquashfs", "-lln", extract(t, img, parts[1]))
}

func rootFile(t *testing.T, img, path string) string {
	t.Helper()
	_, parts := partitions(t, img)
	dest := filepath.Join(t.TempDir(), "x")
	if out, err := exec.Command("unsquashfs", "-d", dest, extract(t, img, parts[1]), path).CombinedOutput(); err != nil {
		t.Fatalf("unsquashfs %s: %v\n%s", path, err, out)
	}
	data, err := os.ReadFile(filepath.Join(dest, path))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func grepLines(s, sub string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return out
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
