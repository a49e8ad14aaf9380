package agent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
)

// importImages loads every archive in dir into containerd's CRI namespace,
// unpacked for the overlayfs snapshotter and pinned, so the kubelet's image
// garbage collection never removes what no registry could give back.
func importImages(ctx context.Context, log *slog.Logger, dir string) error {
	archives, _ := filepath.Glob(filepath.Join(dir, "*.tar"))
	if len(archives) == 0 {
		return fmt.Errorf("%w in %s (cairn build puts the pause image there)", errNoImages, dir)
	}
	c, err := containerd.New(ContainerdSock, containerd.WithDefaultNamespace(Namespace))
	if err != nil {
		return err
	}
	defer c.Close()
	var failed []string
	for _, a := range archives {
		start := time.Now()
		names, err := importOne(ctx, c, a)
		if err != nil {
			log.Error("image archive not imported", "archive", a, "err", err)
			failed = append(failed, filepath.Base(a))
			continue
		}
		log.Info("image imported", "archive", filepath.Base(a), "images", names, "took", time.Since(start).Round(time.Millisecond))
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d image archives failed: %v", len(failed), len(archives), failed)
	}
	return nil
}

func importOne(ctx context.Context, c *containerd.Client, archive string) ([]string, error) {
	f, err := os.Open(archive)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	imgs, err := c.Import(ctx, f, containerd.WithImageLabels(map[string]string{
		"io.cri-containerd.image":  "managed",
		"io.cri-containerd.pinned": "pinned",
	}))
	if err != nil {
		return nil, err
	}
	if len(imgs) == 0 {
		return nil, fmt.Errorf("the archive names no image")
	}
	var names []string
	for _, im := range imgs {
		if err := containerd.NewImage(c, im).Unpack(ctx, "overlayfs"); err != nil {
			return nil, fmt.Errorf("unpacking %s: %w", im.Name, err)
		}
		names = append(names, im.Name)
	}
	return names, nil
}
