package identity

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRotateSecret checks that a rotation makes a new join secret for the
// same CA, keeps the old one until its deadline and no later, survives a
// reload, and that a second rotation retires the first secret at once.
func TestRotateSecret(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lab")
	old, _, _ := LoadOrCreate(dir, now)
	week := 7 * 24 * time.Hour
	if _, err := RotateSecret(dir, now, week); err != nil {
		t.Fatal(err)
	}
	b, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if b.Secret == old.Secret || b.PreviousSecret != old.Secret || !b.PreviousUntil.Equal(now.Add(week)) {
		t.Fatalf("after the rotation: secret changed %v, previous %q until %v", b.Secret != old.Secret, b.PreviousSecret, b.PreviousUntil)
	}
	newTok, _ := ParseToken(b.Token())
	if oldTok, _ := ParseToken(old.Token()); newTok.CAHash != oldTok.CAHash || newTok.Secret != b.Secret {
		t.Errorf("the new token %s does not pin the same CA with the new secret", b.Token())
	}
	if tok, _ := os.ReadFile(filepath.Join(dir, FileToken)); strings.TrimSpace(string(tok)) != b.Token() {
		t.Errorf("token file %q", tok)
	}
	for _, c := range []struct {
		secret string
		at     time.Time
		want   error
	}{
		{b.Secret, now, nil},
		{b.Secret, now.Add(365 * 24 * time.Hour), nil},
		{old.Secret, now.Add(week - time.Second), nil},
		{old.Secret, now.Add(week), ErrSecretRetired},
		{"0123456789abcdef0123456789abcdef", now, ErrWrongSecret},
		{"", now, ErrWrongSecret},
	} {
		if err := b.CheckSecret(c.secret, c.at); !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("secret %.8q at %v: %v, want %v", c.secret, c.at, err, c.want)
		}
	}
	if _, err := RotateSecret(dir, now.Add(time.Hour), week); err != nil {
		t.Fatal(err)
	}
	again, _ := Load(dir)
	if again.PreviousSecret != b.Secret || !errors.Is(again.CheckSecret(old.Secret, now.Add(time.Hour)), ErrWrongSecret) {
		t.Errorf("a second rotation keeps %q as the previous secret and accepts the first: %v", again.PreviousSecret, again.CheckSecret(old.Secret, now))
	}
	if st, err := os.Stat(filepath.Join(dir, FilePreviousSecret)); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("%s: %v %v", FilePreviousSecret, st, err)
	}
	os.WriteFile(filepath.Join(dir, FilePreviousSecret), []byte("junk\n"), 0o600)
	if _, err := Load(dir); !errors.Is(err, ErrBundle) || !strings.Contains(err.Error(), FilePreviousSecret) {
		t.Errorf("a damaged %s: %v", FilePreviousSecret, err)
	}
}
