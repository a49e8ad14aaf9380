//go:build cairnd

package datastore

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/cairn-os/cairn/cluster/supervise"
)

// etcdURL is where an upstream etcd serves the apiserver (loopback only).
const etcdURL = "http://127.0.0.1:2379"

// UpstreamEtcd returns a Start that runs the image's upstream etcd program
// (cairn build --upstream) as the datastore, the way kubeadm does, when the
// config names no datastore; a configured URL still goes through kine.
func UpstreamEtcd(log *slog.Logger, logDir string) func(ctx context.Context, url, dir string) (string, error) {
	return func(ctx context.Context, url, dir string) (string, error) {
		if url != "" {
			return Start(ctx, url, dir)
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", err
		}
		const peer = "http://127.0.0.1:2380"
		c := supervise.Component{Name: "etcd", Env: []string{"ETCD_UNSUPPORTED_ARCH=" + runtime.GOARCH}, Args: []string{
			"--name=cairn", "--data-dir=" + filepath.Join(dir, "etcd"),
			"--listen-client-urls=" + etcdURL, "--advertise-client-urls=" + etcdURL,
			"--listen-peer-urls=" + peer, "--initial-advertise-peer-urls=" + peer, "--initial-cluster=cairn=" + peer,
		}}
		go supervise.Run(ctx, log, "", c, logDir)
		for deadline := time.Now().Add(10 * time.Minute); ; {
			req, _ := http.NewRequestWithContext(ctx, "GET", etcdURL+"/health", nil)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return etcdURL, nil
				}
			}
			if ctx.Err() != nil || time.Now().After(deadline) {
				return "", fmt.Errorf("the upstream etcd did not become healthy on %s; see %s", etcdURL, filepath.Join(logDir, "etcd.log"))
			}
			time.Sleep(time.Second)
		}
	}
}
