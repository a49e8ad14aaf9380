package configs

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

const head = "apiVersion: cairn.dev/v1alpha1\nkind: Node\n"

// aliasBomb is a valid document of a few KiB in which one anchor repeated
// expands to n*n interface addresses.
func aliasBomb(n int) []byte {
	addrs := "&p 10.0.0.1/24" + strings.Repeat(", *p", n-1)
	ifcs := "&i {name: eth0, addresses: &a [" + addrs + "]}" + strings.Repeat(", *i", n-1)
	return []byte(head + "network:\n  interfaces: [" + ifcs + "]\n")
}

// allocated is how many bytes f allocates (in this test, so in total).
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestAliasBombIsRefusedCheaply(t *testing.T) {
	doc := aliasBomb(2000) // 16 KiB expanding to 4 million addresses
	var err error
	bytes := allocated(func() { _, _, err = Parse("t.yaml", doc) })
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "has more than 100000 values") {
		t.Errorf("err = %.300v", err)
	}
	if bytes > 64<<20 {
		t.Errorf("decoding a %d-byte alias bomb allocated %d MiB; want under 64", len(doc), bytes>>20)
	}
	if len(err.Error()) > 2048 {
		t.Errorf("error text is %d bytes", len(err.Error()))
	}
}

func TestErrorTextIsBounded(t *testing.T) {
	// A 100 KB bad value reported a thousand times through one anchor.
	doc := head + "hostname: &h " + strings.Repeat("no ", 33_000) + "\nmodules: [*h" + strings.Repeat(", *h", 999) + "]\n"
	_, _, err := Parse("t.yaml", []byte(doc))
	if err == nil {
		t.Fatal("no error")
	}
	text := err.Error()
	if len(text) > (maxProblems+1)*(maxMsgBytes+maxPathBytes+64) {
		t.Errorf("error text is %d bytes", len(text))
	}
	if !strings.Contains(text, "more problems are not shown") || !strings.Contains(text, "is not a kernel module name (letters, digits, '_' and '-')") {
		t.Errorf("error text lost its count or its advice:\n%s", text)
	}
}

func TestLongMapKeyIsRefused(t *testing.T) {
	doc := head + "sysctl:\n  " + strings.Repeat("k", 600) + ": \"1\"\n"
	_, _, err := Parse("t.yaml", []byte(doc))
	if err == nil || !strings.Contains(err.Error(), "t.yaml:4:3: sysctl: a key is 600 bytes long; keys here are at most 512") {
		t.Errorf("err = %v", err)
	}
}

func TestOversizedFileIsRefused(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.yaml")
	data := append([]byte(head+"# "), make([]byte, MaxFileBytes)...)
	for i := len(head) + 2; i < len(data); i++ {
		data[i] = 'x'
	}
	if err := os.WriteFile(big, data, 0o644); err != nil {
		t.Fatal(err)
	}
	want := "big.yaml: the file is larger than 1 MiB"
	if _, _, err := Load(big); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), want) {
		t.Errorf("Load: %v", err)
	}
	if _, _, err := Parse(big, data); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Parse: %v", err)
	}
	base := filepath.Join(dir, "node.yaml")
	os.WriteFile(base, []byte(head+"hostname: baked\n"), 0o644)
	c, _, cardErr, err := LoadWithCard(base, big, "cairn.yaml")
	if err != nil || c.Hostname != "baked" || cardErr == nil {
		t.Errorf("an oversized card config must be left out, not stop the node: %v, %v", cardErr, err)
	}
	if _, err := ReadFile(filepath.Join(dir, "absent.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing file: %v", err)
	}
}

func TestClipKeepsBothEnds(t *testing.T) {
	s := "é" + strings.Repeat("a", 1000) + "; use 576 to 9216"
	got := clip(s, 100)
	if len(got) > 110 || !strings.HasPrefix(got, "é") || !strings.HasSuffix(got, "; use 576 to 9216") || !strings.Contains(got, " … ") {
		t.Errorf("clip: %q", got)
	}
	if clip("short", 100) != "short" {
		t.Error("clip changed a short text")
	}
}
