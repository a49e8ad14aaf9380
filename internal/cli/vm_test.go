package cli

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPrefixWriter(t *testing.T) {
	var out bytes.Buffer
	lw := &lockedWriter{w: &out}
	a := &prefixWriter{out: lw, prefix: "a | "}
	b := &prefixWriter{out: lw, prefix: "b | "}
	a.Write([]byte("one\r\ntw"))
	b.Write([]byte("other\r\n"))
	a.Write([]byte("o\r\n"))
	a.Write([]byte(strings.Repeat("x", 5000)))
	want := "a | one\nb | other\na | two\na | " + strings.Repeat("x", 5000) + "\n"
	if out.String() != want {
		t.Errorf("got %q", out.String())
	}
}

func TestVMRefusals(t *testing.T) {
	dir := t.TempDir()
	blank, other := filepath.Join(dir, "blank.img"), filepath.Join(dir, "other.img")
	os.WriteFile(blank, make([]byte, 1<<20), 0o644)
	os.WriteFile(other, make([]byte, 1<<20), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"vm", blank}, "blank.img: not a Cairn image: no partition table; if it is an image of another tool, name its board with --board"},
		{[]string{"vm", "--board", "rpi3", blank, other}, "blank.img: board rpi3 has no network card in QEMU to put on a LAN; boot it alone"},
		{[]string{"vm", "--board", "qemu-arm64", blank, filepath.Join(dir, ".", "blank.img")}, "blank.img is given twice"},
		{[]string{"vm", "--board", "rpi4", blank}, "blank.img is for board rpi4, which QEMU cannot boot"},
		{[]string{"vm", "--board", "rpi9", blank}, `unknown board "rpi9"`},
		{[]string{"vm", "--cpus", "0", blank}, "--cpus 0: give 1 to 64 virtual CPUs per VM, or leave it out"},
	} {
		out, err := run(tc.args...)
		if Code(err) != 2 || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: exit %d, %v\n%s", tc.args, Code(err), err, out)
		}
	}
	// A server's API goes to 6443 here, where its kubeconfig points, or to
	// a free port when something holds 6443 (this test, unless another
	// program does).
	if l, err := net.Listen("tcp", "127.0.0.1:6443"); err == nil {
		defer l.Close()
	}
	// Another cairn vm holds it: a free port instead.
	got, port, err := forwardAPI([]string{"8080:80"})
	if err != nil || port == "6443" || len(got) != 2 || got[1] != port+":6443" {
		t.Errorf("a taken port: %v, %s, %v", got, port, err)
	}
	if got, port, err := forwardAPI([]string{"7000:6443"}); err != nil || len(got) != 1 || port != "7000" {
		t.Errorf("a forward of the API given: %v, %s, %v", got, port, err)
	}
}
