package configs

import (
	"encoding/base64"
	"fmt"
	"path"
	"regexp"
	"strings"
)

// WritableRoots are the trees init can write files into at boot.
var WritableRoots = []string{"/etc", "/var", "/run"}

// Reserved are the files and trees under WritableRoots that init and
// cairnd write for themselves, with what each holds: a files[] entry
// there would be overwritten by them or would damage the node's own
// state, so Validate refuses it.
var Reserved = []struct{ Path, Holds string }{
	{"/etc/hostname", "the host name that init writes from hostname:, so set hostname: instead"},
	{"/etc/resolv.conf", "the resolver settings that init rewrites from network.dns and DHCP, so set network.dns instead"},
	{"/etc/passwd", "the accounts that init writes and the image's programs run as, so leave it to init"},
	{"/etc/group", "the groups that init writes and the image's programs run as, so leave it to init"},
	{"/run/cairn", "init's and cairnd's own state (the generated /etc, the card config's copy, the cluster health), so choose a path outside it"},
	{"/var/lib/cairn", "cairnd's cluster state and keys and init's saved clock, so choose a path outside it"},
	{"/var/lib/containerd", "containerd's images and containers, so choose a path outside it"},
	{"/run/containerd", "containerd's socket and running state, so choose a path outside it"},
	{"/var/log/cairnd.log", "init's log of cairnd, which it rotates, so choose a path outside it"},
	{"/var/log/kubernetes", "the cluster components' logs and the audit log, so choose a path outside it"},
}

var ownerRE = regexp.MustCompile(`^[0-9]{1,9}:[0-9]{1,9}$`)

// SplitWritable returns the writable root that holds p and p's path in it
// ("/etc/app/x.conf" → "/etc", "app/x.conf").
func SplitWritable(p string) (root, rel string, ok bool) {
	for _, r := range WritableRoots {
		if rel, ok := strings.CutPrefix(p, r+"/"); ok {
			return r, rel, true
		}
	}
	return "", "", false
}

func reservedBy(p string) (reserved, holds string) {
	for _, r := range Reserved {
		if p == r.Path || strings.HasPrefix(p, r.Path+"/") {
			return r.Path, r.Holds
		}
	}
	return "", ""
}

func (k *checker) files(files []File) {
	seen := map[string]bool{}
	for i, f := range files {
		p := fmt.Sprintf("files[%d]", i)
		k.filePath(p+".path", f.Path, seen)
		seen[f.Path] = true
		if f.Mode&^0o777 != 0 {
			k.err(p+".mode", "%04o sets the setuid, setgid or sticky bit, which init does not write; use a mode from 0000 to 0777", uint32(f.Mode))
		}
		if f.Content != "" && f.Base64 != "" {
			k.err(p, "give content or base64, not both")
		}
		if f.Base64 != "" {
			if _, err := base64.StdEncoding.DecodeString(f.Base64); err != nil {
				k.err(p+".base64", "not valid base64: %v", err)
			}
		}
		if f.Owner != "" && !ownerRE.MatchString(f.Owner) {
			k.err(p+".owner", "%q is not a numeric uid:gid such as 0:0", f.Owner)
		}
	}
}

func (k *checker) filePath(p, file string, seen map[string]bool) {
	_, _, writable := SplitWritable(file)
	reserved, holds := reservedBy(file)
	switch {
	case file == "":
		k.err(p, "required")
	case !path.IsAbs(file) || path.Clean(file) != file:
		k.err(p, "%q must be an absolute, clean path", file)
	case !writable:
		k.err(p, "%q is on the read-only root; files may go under %s", file, strings.Join(WritableRoots, ", "))
	case reserved == file:
		k.err(p, "%q holds %s", file, holds)
	case reserved != "":
		k.err(p, "%q is in %s, which holds %s", file, reserved, holds)
	case seen[file]:
		k.err(p, "%q is listed twice", file)
	}
}
