package keystore

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zalando/go-keyring"
)

// fastArgon2 keeps tests quick; production uses DefaultArgon2Params.
var fastArgon2 = Argon2Params{Time: 1, Memory: 64, Threads: 1}

func staticPass(p string) func(context.Context) ([]byte, error) {
	return func(context.Context) ([]byte, error) { return []byte(p), nil }
}

// fakeSealer seals with a fixed AES-GCM key, like a TPM bound to one machine.
type fakeSealer struct{ aead cipher.AEAD }

func newFakeSealer(t *testing.T) *fakeSealer {
	b, err := aes.NewCipher(testKey(t))
	must(t, err)
	a, err := cipher.NewGCM(b)
	must(t, err)
	return &fakeSealer{aead: a}
}

func (s *fakeSealer) Seal(secret []byte) ([]byte, error) {
	n := make([]byte, 12)
	_, _ = rand.Read(n)
	return s.aead.Seal(n, n, secret, nil), nil
}

func (s *fakeSealer) Unseal(blob []byte) ([]byte, error) {
	if len(blob) < 12 {
		return nil, errors.New("short")
	}
	return s.aead.Open(nil, blob[:12], blob[12:], nil)
}

// blockingKeyring never answers, like a keyring waiting on an unlock prompt.
type blockingKeyring struct{ release chan struct{} }

func (b blockingKeyring) Get(string, string) (string, error) {
	<-b.release
	return "", keyring.ErrNotFound
}
func (b blockingKeyring) Set(string, string, string) error { <-b.release; return nil }

func checkMode(t *testing.T, path string) {
	t.Helper()
	st, err := os.Stat(path)
	must(t, err)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("%s mode %v, want 0600", path, st.Mode().Perm())
	}
}

func TestKeyringSource(t *testing.T) {
	keyring.MockInit()
	dir := t.TempDir()
	s := &KeyringSource{Dir: dir}
	k1, err := s.Key(context.Background())
	must(t, err)
	k2, err := s.Key(context.Background())
	must(t, err)
	if len(k1) != MasterKeySize || !bytes.Equal(k1, k2) {
		t.Fatal("keyring key not stable")
	}
	other, err := (&KeyringSource{Dir: t.TempDir()}).Key(context.Background())
	must(t, err)
	if bytes.Equal(other, k1) {
		t.Fatal("two folders share a key")
	}
	if _, err := (&KeyringSource{Dir: t.TempDir(), NoCreate: true}).Key(context.Background()); !errors.Is(err, ErrNoMasterKey) {
		t.Fatalf("NoCreate: %v", err)
	}
}

func TestKeyringSourceTimeout(t *testing.T) {
	bk := blockingKeyring{release: make(chan struct{})}
	defer close(bk.release)
	s := &KeyringSource{Dir: t.TempDir(), Timeout: 50 * time.Millisecond, api: bk}
	_, err := s.Key(context.Background())
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "did not answer") {
		t.Fatalf("blocked keyring: %v", err)
	}
}

func TestPassphraseSource(t *testing.T) {
	dir := t.TempDir()
	s := &PassphraseSource{Dir: dir, Passphrase: staticPass("correct horse"), Params: fastArgon2}
	k1, err := s.Key(context.Background())
	must(t, err)
	checkMode(t, filepath.Join(dir, PassphraseParamsFileName))
	params, _ := os.ReadFile(filepath.Join(dir, PassphraseParamsFileName))
	// The recorded parameters win over the caller's on later runs.
	s2 := &PassphraseSource{Dir: dir, Passphrase: staticPass("correct horse"), Params: DefaultArgon2Params, NoCreate: true}
	k2, err := s2.Key(context.Background())
	must(t, err)
	if !bytes.Equal(k1, k2) {
		t.Fatal("same passphrase, different key")
	}
	bad := &PassphraseSource{Dir: dir, Passphrase: staticPass("wrong horse")}
	if _, err := bad.Key(context.Background()); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	if now, _ := os.ReadFile(filepath.Join(dir, PassphraseParamsFileName)); !bytes.Equal(now, params) {
		t.Fatal("wrong passphrase changed the parameters file")
	}
	if _, err := (&PassphraseSource{Dir: t.TempDir(), Passphrase: staticPass("x"), NoCreate: true}).Key(context.Background()); !errors.Is(err, ErrNoMasterKey) {
		t.Fatalf("NoCreate: %v", err)
	}
	// Hostile parameters are refused before deriving.
	em, _ := encMode()
	huge, _ := em.Marshal(passphraseParams{Version: 1, Params: Argon2Params{Time: 1, Memory: 1 << 31, Threads: 1}, Salt: make([]byte, 16), Check: make([]byte, 16)})
	d3 := t.TempDir()
	must(t, os.WriteFile(filepath.Join(d3, PassphraseParamsFileName), huge, 0o600))
	if _, err := (&PassphraseSource{Dir: d3, Passphrase: staticPass("x")}).Key(context.Background()); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Fatalf("huge params: %v", err)
	}
}

func TestSealedSource(t *testing.T) {
	dir := t.TempDir()
	sealer := newFakeSealer(t)
	s := &SealedSource{Dir: dir, Sealer: sealer}
	k1, err := s.Key(context.Background())
	must(t, err)
	checkMode(t, filepath.Join(dir, SealedKeyFileName))
	blob, _ := os.ReadFile(filepath.Join(dir, SealedKeyFileName))
	if bytes.Contains(blob, k1) {
		t.Fatal("sealed blob contains the key")
	}
	k2, err := (&SealedSource{Dir: dir, Sealer: sealer, NoCreate: true}).Key(context.Background())
	must(t, err)
	if !bytes.Equal(k1, k2) {
		t.Fatal("unsealed key differs")
	}
	// Another machine's TPM cannot unseal it.
	if _, err := (&SealedSource{Dir: dir, Sealer: newFakeSealer(t)}).Key(context.Background()); err == nil {
		t.Fatal("foreign sealer unsealed the key")
	}
}

func TestKeyFileSource(t *testing.T) {
	dir := t.TempDir()
	s := &KeyFileSource{Dir: dir}
	if !strings.Contains(s.Name(), "protected only by file permissions") {
		t.Fatal(s.Name())
	}
	k1, err := s.Key(context.Background())
	must(t, err)
	path := filepath.Join(dir, KeyFileName)
	checkMode(t, path)
	k2, err := s.Key(context.Background())
	must(t, err)
	if !bytes.Equal(k1, k2) {
		t.Fatal("key file key not stable")
	}
	must(t, os.Chmod(path, 0o644))
	if _, err := s.Key(context.Background()); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable key file: %v", err)
	}
}

func TestChooseMasterKey(t *testing.T) {
	keyring.MockInit()
	ctx := context.Background()
	sealer := newFakeSealer(t)

	t.Run("order", func(t *testing.T) {
		cases := []struct {
			prefs MasterKeyPrefs
			want  string
		}{
			{MasterKeyPrefs{Passphrase: staticPass("p"), Argon2: fastArgon2, Sealer: sealer, Keyring: true}, SourcePassphrase},
			{MasterKeyPrefs{Sealer: sealer, Keyring: true}, SourceSealed},
			{MasterKeyPrefs{Keyring: true}, SourceKeyring},
			{MasterKeyPrefs{}, SourceKeyFile},
		}
		for _, c := range cases {
			mk, err := ChooseMasterKey(ctx, t.TempDir(), c.prefs)
			must(t, err)
			if mk.Source.Kind() != c.want || !mk.Created || len(mk.Key) != MasterKeySize {
				t.Errorf("got %s (created %v), want %s", mk.Source.Kind(), mk.Created, c.want)
			}
		}
		if _, err := ChooseMasterKey(ctx, t.TempDir(), MasterKeyPrefs{NoKeyFile: true}); err == nil {
			t.Error("no source at all succeeded")
		}
	})

	t.Run("blocked keyring falls back", func(t *testing.T) {
		bk := blockingKeyring{release: make(chan struct{})}
		defer close(bk.release)
		mk, err := ChooseMasterKey(ctx, t.TempDir(), MasterKeyPrefs{Keyring: true, KeyringTimeout: 20 * time.Millisecond, keyringAPI: bk})
		must(t, err)
		if mk.Source.Kind() != SourceKeyFile || len(mk.Skipped) == 0 {
			t.Fatalf("got %s, skipped %q", mk.Source.Kind(), mk.Skipped)
		}
	})

	t.Run("sticks to the recorded source", func(t *testing.T) {
		dir := t.TempDir()
		mk, err := ChooseMasterKey(ctx, dir, MasterKeyPrefs{Keyring: true})
		must(t, err)
		f, err := OpenFile(dir, FileOptions{MasterKey: mk.Key})
		must(t, err)
		must(t, f.SetPINState(PINState{Retries: 3}))
		must(t, f.Close())
		checkMode(t, filepath.Join(dir, MasterKeySourceFileName))

		// A TPM appearing later does not change the key.
		again, err := ChooseMasterKey(ctx, dir, MasterKeyPrefs{Keyring: true, Sealer: sealer})
		must(t, err)
		if again.Source.Kind() != SourceKeyring || again.Created || !bytes.Equal(again.Key, mk.Key) {
			t.Fatalf("reopen chose %s", again.Source.Kind())
		}
		// Without the keyring the error says what protects the state.
		if _, err := ChooseMasterKey(ctx, dir, MasterKeyPrefs{Sealer: sealer}); err == nil || !strings.Contains(err.Error(), "keyring") {
			t.Fatalf("keyring disabled: %v", err)
		}
	})

	t.Run("wrong passphrase changes nothing", func(t *testing.T) {
		dir := t.TempDir()
		mk, err := ChooseMasterKey(ctx, dir, MasterKeyPrefs{Passphrase: staticPass("right"), Argon2: fastArgon2})
		must(t, err)
		f, err := OpenFile(dir, FileOptions{MasterKey: mk.Key})
		must(t, err)
		must(t, f.PutCredential(sampleCred("a", true)))
		must(t, f.Close())
		before := snapshotDir(t, dir)
		_, err = ChooseMasterKey(ctx, dir, MasterKeyPrefs{Passphrase: staticPass("wrong"), Argon2: fastArgon2})
		if !errors.Is(err, ErrWrongPassphrase) {
			t.Fatalf("wrong passphrase: %v", err)
		}
		if after := snapshotDir(t, dir); !equalSnap(before, after) {
			t.Fatal("wrong passphrase changed the state folder")
		}
	})
}

func snapshotDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	ents, err := os.ReadDir(dir)
	must(t, err)
	m := map[string][]byte{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		must(t, err)
		m[e.Name()] = b
	}
	return m
}

func equalSnap(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !bytes.Equal(v, b[k]) {
			return false
		}
	}
	return true
}
