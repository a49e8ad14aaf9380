package pid1

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/cairn-os/cairn/configs"
	"github.com/cairn-os/cairn/internal/atomicfile"
)

// files writes the config's files[]; one that fails does not stop the others.
func (s *stage2) files(ctx context.Context, log *slog.Logger) error {
	var errs []error
	for _, f := range s.cfg.Files {
		top, rel, ok := configs.SplitWritable(f.Path)
		if !ok { // Validate refuses these; be sure anyway.
			errs = append(errs, fmt.Errorf("%s is not under %s", f.Path, strings.Join(configs.WritableRoots, ", ")))
			continue
		}
		n, err := writeFile(top, rel, f)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.Path, err))
			continue
		}
		log.Info("wrote file", "path", f.Path, "bytes", n, "mode", fmt.Sprintf("%04o", fileMode(f)))
	}
	return errors.Join(errs...)
}

// writeFile writes one files[] entry at rel inside the folder top, whole
// (atomicfile.WriteIn): missing folders are made, no symbolic link on the
// way is followed, and owner and mode are set before the file appears.
// It returns the file's size.
func writeFile(top, rel string, f configs.File) (int, error) {
	data := []byte(f.Content)
	if f.Base64 != "" {
		var err error
		if data, err = base64.StdEncoding.DecodeString(f.Base64); err != nil {
			return 0, err
		}
	}
	root, err := os.OpenRoot(top)
	if err != nil {
		return 0, err
	}
	defer root.Close()
	uid, gid := fileOwner(f)
	chown := func(tmp *os.File) error { return tmp.Chown(uid, gid) }
	return len(data), atomicfile.WriteIn(root, rel, data, fileMode(f), chown)
}

// fileMode is the entry's permissions, 0644 when not given. Validate
// refuses setuid, setgid and sticky bits.
func fileMode(f configs.File) os.FileMode {
	if f.Mode == 0 {
		return 0o644
	}
	return os.FileMode(f.Mode) & os.ModePerm
}

// fileOwner is the entry's numeric uid:gid, 0:0 when not given.
func fileOwner(f configs.File) (uid, gid int) {
	if u, g, ok := strings.Cut(f.Owner, ":"); ok {
		uid, _ = strconv.Atoi(u)
		gid, _ = strconv.Atoi(g)
	}
	return uid, gid
}
