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
	"time"

	"github.com/cairn-os/cairn/boards"
	"github.com/cairn-os/cairn/internal/qemu"
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

// TestServerOnPostgres boots a server whose cluster.datastore is a real
// PostgreSQL the test runs on the build machine: the node becomes Ready,
// and the objects the API stores are rows in PostgreSQL.
func TestServerOnPostgres(t *testing.T) {
	need(t, "qemu-system-aarch64")
	pg := startPostgres(t)
	t.Setenv("CAIRN_CLUSTERS", t.TempDir())
	dir := t.TempDir()
	cfg := fmt.Sprintf("apiVersion: cairn.dev/v1alpha1\nkind: Node\nhostname: pgsrv\ncluster:\n  name: pgtest\n  role: server\n  datastore: postgres://kine@10.0.2.2:%d/kine?sslmode=disable\n", pg.port)
	img := buildImage(t, "qemu-arm64", cfg, dir)
	if err := os.Truncate(img, 3<<30); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	api := newKubeClient(t, filepath.Join(dir, "kubeconfig"), fmt.Sprintf("https://127.0.0.1:%d", port))
	board, _ := boards.Get("qemu-arm64")
	vm, err := qemu.Start(qemu.Options{Board: board, Image: img, Forward: []string{fmt.Sprintf("%d:6443", port)}})
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Kill()
	if _, err := vm.WaitFor(`msg="datastore ready" backend=postgres`, 0, serverTimeout); err != nil {
		t.Fatalf("%v\nconsole:\n%s", err, vm.Output())
	}
	if _, err := vm.WaitFor("health: cluster healthy status=apiserver=ready,node=ready", 0, serverTimeout); err != nil {
		t.Fatalf("the node did not become Ready: %v\nconsole:\n%s", err, vm.Output())
	}
	t.Logf("node ready after %s", vm.Since().Round(time.Second))
	api.json(t, "POST", "/api/v1/namespaces/default/configmaps", map[string]any{
		"metadata": map[string]any{"name": "in-postgres"}, "data": map[string]string{"v": "stored-in-postgres-2718"}}, 201, nil)
	rows := pg.query(t, "SELECT count(*) FROM kine WHERE name = '/registry/configmaps/default/in-postgres' AND position('stored-in-postgres-2718'::bytea in value) > 0")
	if rows != "1" {
		t.Errorf("the config map is not a row in PostgreSQL: count %q", rows)
	}
	if n := pg.query(t, "SELECT count(*) FROM kine WHERE name LIKE '/registry/minions/pgsrv'"); n == "0" {
		t.Error("the node object is not in PostgreSQL")
	}
}
