// Package registrytest runs a real registry (Debian's docker-registry, the
// distribution project's server) on loopback for tests, and pushes images
// to it over the distribution API.
package registrytest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Registry is a running registry.
type Registry struct {
	Host string // 127.0.0.1:PORT
	t    testing.TB
	cmd  *exec.Cmd
}

// Start runs a registry with its storage in a temporary folder, stopped
// when the test ends.
func Start(t testing.TB) *Registry {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		t.Fatal("docker-registry is missing: run `make deps` (the tests install their tools through it)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	cfg := fmt.Sprintf("version: 0.1\nlog: {level: warn}\nstorage:\n  filesystem: {rootdirectory: %s}\nhttp:\n  addr: %s\n", filepath.Join(dir, "data"), host)
	cfgFile := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &Registry{Host: host, t: t, cmd: exec.Command(bin, "serve", cfgFile)}
	logf, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logf.Name())
			t.Fatalf("the registry did not answer on %s in 30 s (%v):\n%s", host, err, log)
		}
	}
}

// Stop ends the registry (a test of unreachable registries calls it early).
func (r *Registry) Stop() {
	if r.cmd.Process != nil && r.cmd.ProcessState == nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
	}
}

// Descriptor is what a push returns: enough to point at the content.
type Descriptor struct {
	MediaType string            `json:"mediaType"`
	Digest    string            `json:"digest"`
	Size      int64             `json:"size"`
	Platform  map[string]string `json:"platform,omitempty"`
}

func digestOf(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Blob uploads data to repo in one request.
func (r *Registry) Blob(repo, mediaType string, data []byte) Descriptor {
	r.t.Helper()
	d := Descriptor{MediaType: mediaType, Digest: digestOf(data), Size: int64(len(data))}
	resp := r.do("POST", "http://"+r.Host+"/v2/"+repo+"/blobs/uploads/", "", nil, http.StatusAccepted)
	loc, err := resp.Location()
	if err != nil {
		r.t.Fatal(err)
	}
	q := loc.Query()
	q.Set("digest", d.Digest)
	loc.RawQuery = q.Encode()
	r.do("PUT", loc.String(), "application/octet-stream", data, http.StatusCreated)
	return d
}

// Manifest puts a manifest or index under repo:ref.
func (r *Registry) Manifest(repo, ref, mediaType string, data []byte) Descriptor {
	r.t.Helper()
	r.do("PUT", "http://"+r.Host+"/v2/"+repo+"/manifests/"+url.PathEscape(ref), mediaType, data, http.StatusCreated)
	return Descriptor{MediaType: mediaType, Digest: digestOf(data), Size: int64(len(data))}
}

func (r *Registry) do(method, u, ctype string, body []byte, want int) *http.Response {
	r.t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		r.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		r.t.Fatalf("%s %s: %s: %s", method, u, resp.Status, msg)
	}
	return resp
}

// File is one file of a pushed image's layer.
type File struct {
	Path string // relative, like hello or etc/motd
	Mode int64
	Data []byte
}

// Image pushes a one-layer image for linux/arch (gzip layer, OCI media
// types) and returns its manifest, without tagging it unless tag != "".
func (r *Registry) Image(repo, tag, arch string, entrypoint []string, files ...File) Descriptor {
	r.t.Helper()
	var layer bytes.Buffer
	zw := gzip.NewWriter(&layer)
	tw := tar.NewWriter(zw)
	var diff bytes.Buffer // the uncompressed tar, for the config's diff_ids
	dtw := tar.NewWriter(&diff)
	for _, w := range []*tar.Writer{tw, dtw} {
		for _, f := range files {
			w.WriteHeader(&tar.Header{Name: f.Path, Mode: f.Mode, Size: int64(len(f.Data)), Typeflag: tar.TypeReg, ModTime: time.Unix(1780000000, 0)})
			w.Write(f.Data)
		}
		w.Close()
	}
	zw.Close()
	l := r.Blob(repo, "application/vnd.oci.image.layer.v1.tar+gzip", layer.Bytes())
	cfg, _ := json.Marshal(map[string]any{
		"architecture": arch, "os": "linux",
		"config": map[string]any{"Entrypoint": entrypoint},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{digestOf(diff.Bytes())}},
	})
	c := r.Blob(repo, "application/vnd.oci.image.config.v1+json", cfg)
	const mt = "application/vnd.oci.image.manifest.v1+json"
	man, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": mt, "config": c, "layers": []Descriptor{l}})
	ref := tag
	if ref == "" {
		ref = digestOf(man)
	}
	d := r.Manifest(repo, ref, mt, man)
	d.Platform = map[string]string{"os": "linux", "architecture": arch}
	return d
}

// Index tags an index of the given manifests (from Image) as repo:tag.
func (r *Registry) Index(repo, tag string, manifests ...Descriptor) Descriptor {
	r.t.Helper()
	const mt = "application/vnd.oci.image.index.v1+json"
	idx, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": mt, "manifests": manifests})
	return r.Manifest(repo, tag, mt, idx)
}
