// Package pgtest runs a private PostgreSQL server (Debian's postgresql
// package) on loopback for tests, with a database kine owned by the user
// kine, which may log in without a password from the test's machine.
package pgtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Server is a running PostgreSQL server.
type Server struct {
	Port   int
	bin    string
	asUser []string // runuser prefix when running as root
}

// Start runs a server until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	initdb, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(initdb) == 0 {
		t.Fatal("PostgreSQL is missing: run `make deps` (the tests install their tools through it)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pg := &Server{bin: filepath.Dir(initdb[len(initdb)-1]), Port: l.Addr().(*net.TCPAddr).Port}
	l.Close()
	dir, err := os.MkdirTemp("", "cairn-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// PostgreSQL refuses to run as root; run it as its own user then.
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
	data := filepath.Join(dir, "data")
	pg.run(t, "initdb", "-D", data, "-U", "kine", "--auth=trust", "-E", "UTF8")
	pg.run(t, "pg_ctl", "-D", data, "-l", filepath.Join(dir, "log"), "-w", "start",
		"-o", fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1", pg.Port, dir))
	t.Cleanup(func() { pg.run(t, "pg_ctl", "-D", data, "-m", "immediate", "stop") })
	pg.run(t, "createdb", "-h", "127.0.0.1", "-p", strconv.Itoa(pg.Port), "-U", "kine", "kine")
	return pg
}

// URL is the kine database's address for kine (and cairn's datastore:).
func (pg *Server) URL(host string) string {
	return fmt.Sprintf("postgres://kine@%s:%d/kine?sslmode=disable", host, pg.Port)
}

func (pg *Server) run(t testing.TB, prog string, args ...string) string {
	t.Helper()
	argv := append(append(append([]string{}, pg.asUser...), filepath.Join(pg.bin, prog)), args...)
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return string(out)
}

// Query runs SQL in the kine database and returns the bare result.
func (pg *Server) Query(t testing.TB, sql string) string {
	t.Helper()
	return strings.TrimSpace(pg.run(t, "psql", "-h", "127.0.0.1", "-p", strconv.Itoa(pg.Port), "-U", "kine", "-d", "kine", "-At", "-c", sql))
}
