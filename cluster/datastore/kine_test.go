//go:build cairnd

package datastore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairn-os/cairn/internal/pgtest"
)

// kine serves the etcd API the apiserver uses from SQLite (the default) and
// from a real PostgreSQL: an object created through the socket is read back,
// listed, updated on its revision (not on a stale one), deleted and watched,
// and is a row in the database. (TestCluster in internal/vmtest runs a
// whole server on SQLite.)
func TestKineStoresObjects(t *testing.T) {
	pg := pgtest.Start(t)
	for _, tc := range []struct{ name, url string }{{"sqlite", ""}, {"postgres", pg.URL("127.0.0.1")}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			dir := t.TempDir()
			etcd, err := start(ctx, tc.url, filepath.Join(dir, "db"), filepath.Join(dir, "kine.sock"))
			if err != nil {
				t.Fatal(err)
			}
			if etcd != "unix://"+filepath.Join(dir, "kine.sock") {
				t.Errorf("etcd URL %q", etcd)
			}
			cli, err := clientv3.New(clientv3.Config{Endpoints: []string{etcd}, DialTimeout: 30 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer cli.Close()
			const key, value = "/registry/configmaps/default/kept", "stored-through-kine-4711"
			// A create as the apiserver makes it: a transaction on revision 0.
			rctx, rcancel := context.WithTimeout(ctx, time.Minute)
			defer rcancel()
			txn, err := cli.Txn(rctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", 0)).Then(clientv3.OpPut(key, value)).Commit()
			if err != nil || !txn.Succeeded {
				t.Fatalf("create: %v (succeeded %v)", err, txn != nil && txn.Succeeded)
			}
			got, err := cli.Get(rctx, key)
			if err != nil || len(got.Kvs) != 1 || string(got.Kvs[0].Value) != value {
				t.Fatalf("get: %v %+v", err, got)
			}
			switch tc.name {
			case "postgres":
				if n := pg.Query(t, "SELECT count(*) FROM kine WHERE name = '"+key+"' AND value = convert_to('"+value+"', 'UTF8')"); n != "1" {
					t.Errorf("rows with the object in PostgreSQL: %s, want 1", n)
				}
			case "sqlite":
				// The database and its write-ahead log, on the data partition on a node.
				var all []byte
				for _, f := range []string{"state.db", "state.db-wal"} {
					b, _ := os.ReadFile(filepath.Join(dir, "db", f))
					all = append(all, b...)
				}
				if !strings.Contains(string(all), value) {
					t.Errorf("the object is not in %s", filepath.Join(dir, "db", "state.db"))
				}
			}
			// What else the apiserver asks of it: a watch on a prefix, a
			// list with a limit, an update and a delete on the revision it
			// read.
			watch := cli.Watch(rctx, "/registry/configmaps/", clientv3.WithPrefix(), clientv3.WithRev(got.Header.Revision+1))
			other := "/registry/configmaps/default/other"
			if txn, err := cli.Txn(rctx).If(clientv3.Compare(clientv3.ModRevision(other), "=", 0)).Then(clientv3.OpPut(other, "x")).Commit(); err != nil || !txn.Succeeded {
				t.Fatalf("second create: %v", err)
			}
			list, err := cli.Get(rctx, "/registry/configmaps/", clientv3.WithPrefix(), clientv3.WithLimit(1))
			if err != nil || len(list.Kvs) != 1 || list.Count != 2 || !list.More {
				t.Errorf("list with limit 1: %v, %d of %d (more %v)", err, len(list.Kvs), list.Count, list.More)
			}
			rev := got.Kvs[0].ModRevision
			update := func() bool {
				txn, err := cli.Txn(rctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
					Then(clientv3.OpPut(key, "updated")).Else(clientv3.OpGet(key)).Commit()
				if err != nil {
					t.Fatalf("update: %v", err)
				}
				return txn.Succeeded
			}
			if !update() {
				t.Error("an update on the revision read failed")
			}
			if update() {
				t.Error("an update on a stale revision succeeded")
			}
			got, _ = cli.Get(rctx, key)
			if del, err := cli.Txn(rctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", got.Kvs[0].ModRevision)).
				Then(clientv3.OpDelete(key)).Else(clientv3.OpGet(key)).Commit(); err != nil || !del.Succeeded {
				t.Errorf("delete: %v", err)
			}
			var events []string
			for len(events) < 3 {
				select {
				case w := <-watch:
					for _, e := range w.Events {
						events = append(events, fmt.Sprintf("%s %s", e.Type, e.Kv.Key))
					}
				case <-rctx.Done():
					t.Fatalf("the watch saw %v", events)
				}
			}
			if want := []string{"PUT " + other, "PUT " + key, "DELETE " + key}; !slices.Equal(events, want) {
				t.Errorf("the watch saw %v, want %v", events, want)
			}
		})
	}
}

// A URL kine has no driver for is refused with the ones it has.
func TestUnknownDatastore(t *testing.T) {
	dir := t.TempDir()
	_, err := start(context.Background(), "nats://127.0.0.1:4222", dir, filepath.Join(dir, "kine.sock"))
	if err == nil || !strings.Contains(err.Error(), "no datastore driver for nats://; use sqlite://, postgres://, mysql:// or an etcd http(s):// URL") {
		t.Errorf("nats:// gave %v", err)
	}
	if etcd, err := start(context.Background(), "https://10.0.0.5:2379", dir, filepath.Join(dir, "kine.sock")); err != nil || etcd != "https://10.0.0.5:2379" {
		t.Errorf("an etcd URL gave %q, %v; want it as it is", etcd, err)
	}
}
