package configs

import (
	"strings"
	"testing"
)

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://kine:s3cret@db.lan:5432/kine":          "postgres://kine:xxxxx@db.lan:5432/kine",
		"mysql://root:s3cret@tcp(db:3306)/kine":            "mysql://root:xxxxx@tcp(db:3306)/kine",
		"nats://u:p@ss:w@rd@host:4222":                     "nats://u:xxxxx@host:4222",
		"postgres://u:pa/ss@host/db":                       "postgres://u:xxxxx@host/db",
		"postgres://db/kine?user=k&password=s3cret&x=1":    "postgres://db/kine?user=k&password=xxxxx&x=1",
		"postgres://kine@db.lan:5432/kine?sslmode=disable": "postgres://kine@db.lan:5432/kine?sslmode=disable",
		"https://10.0.0.1:6443":                            "https://10.0.0.1:6443",
		"not a url":                                        "not a url",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestNoPasswordInProblems checks every field that holds a URL.
func TestNoPasswordInProblems(t *testing.T) {
	doc := head + `cluster:
  role: server
  server: http://admin:s3cret@10.0.0.1:6443
  datastore: nats://kine:s3cret@db.lan:4222
update:
  url: ftp://me:s3cret@updates.lan/
repositories:
  - uris: ["ftp://me:s3cret@deb.lan/debian"]
    suites: [bookworm]
`
	_, _, err := Parse("t.yaml", []byte(doc))
	if err == nil {
		t.Fatal("no error")
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("a password is repeated:\n%v", err)
	}
	if n := strings.Count(err.Error(), ":xxxxx@"); n != 4 {
		t.Errorf("%d of 4 URLs shown redacted:\n%v", n, err)
	}
}
