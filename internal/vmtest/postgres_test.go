package vmtest

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// postgres is a private PostgreSQL server on the build machine's loopback,
// which a QEMU guest reaches at 10.0.2.2.
type postgres struct {
	bin, dir string
	port     int
	asUser   []string // runuser prefix when running as root
}

func startPostgres(t *testing.T) *postgres {
	t.Helper()
	initdb, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(initdb) == 0 {
		t.Fatal("PostgreSQL is missing: run `make deps` (the tests install their tools through it)")
	}
	pg := &postgres{bin: filepath.Dir(initdb[len(initdb)-1]), port: freePort(t)}
	// PostgreSQL refuses to run as root; run it as its own user then.
	dir, err := os.MkdirTemp("", "cairn-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	pg.dir = filepath.Join(dir, "data")
	if os.Getuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root, the tests need the postgres user the postgresql package makes: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		os.Chown(dir, uid, gid)
		os.Chmod(dir, 0o755)
		pg.asUser = []string{"runuser", "-u", "postgres", "--"}
	}
	pg.run(t, "initdb", "-D", pg.dir, "-U", "kine", "--auth=trust", "-E", "UTF8")
	pg.run(t, "pg_ctl", "-D", pg.dir, "-l", filepath.Join(dir, "log"), "-w", "start",
		"-o", fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1", pg.port, dir))
	t.Cleanup(func() { pg.run(t, "pg_ctl", "-D", pg.dir, "-m", "immediate", "stop") })
	pg.run(t, "createdb", "-h", "127.0.0.1", "-p", strconv.Itoa(pg.port), "-U", "kine", "kine")
	return pg
}

func (pg *postgres) run(t *testing.T, prog string, args ...string) string {
	t.Helper()
	argv := append(append(append([]string{}, pg.asUser...), filepath.Join(pg.bin, prog)), args...)
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return string(out)
}

// query runs SQL in the kine database and returns the bare result.
func (pg *postgres) query(t *testing.T, sql string) string {
	return strings.TrimSpace(pg.run(t, "psql", "-h", "127.0.0.1", "-p", strconv.Itoa(pg.port), "-U", "kine", "-d", "kine", "-At", "-c", sql))
}
