package keystore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// fixturePassphrase protects testdata/state-v1, a state written by the
// single-file store (vkey before the transactional store): two
// discoverable credentials for example.com, one for other.example, one
// syncable non-discoverable credential, counters for two of them and for
// two unstored IDs, a PIN, a config and a large-blob array.
const fixturePassphrase = "vkey-test-fixture-passphrase"

// copyFixture copies a testdata state folder into a private folder.
func copyFixture(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "state")
	must(t, os.Mkdir(dir, 0o700))
	ents, err := os.ReadDir(filepath.Join("testdata", name))
	must(t, err)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("testdata", name, e.Name()))
		must(t, err)
		must(t, os.WriteFile(filepath.Join(dir, e.Name()), b, 0o600))
	}
	return dir
}

func fixtureKey(t *testing.T, dir string) []byte {
	t.Helper()
	mk, err := ChooseMasterKey(context.Background(), dir, MasterKeyPrefs{Passphrase: staticPass(fixturePassphrase)})
	must(t, err)
	return mk.Key
}

func TestMigrateLegacyState(t *testing.T) {
	dir := copyFixture(t, "state-v1")
	key := fixtureKey(t, dir)

	// A wrong key refuses and converts nothing.
	if _, err := OpenFile(dir, FileOptions{MasterKey: testKey(t)}); !errors.As(err, new(*CorruptError)) {
		t.Fatalf("wrong key: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, StateFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused open created %s", StateFileName)
	}

	// A conversion interrupted before its commit (the rename) is redone.
	must(t, os.WriteFile(filepath.Join(dir, migratingFileName), []byte("half-built"), 0o600))

	f, err := OpenFile(dir, FileOptions{MasterKey: key})
	must(t, err)
	check := func(f *File) {
		t.Helper()
		cs, err := f.Credentials()
		must(t, err)
		var ids []string
		for _, c := range cs {
			ids = append(ids, string(c.ID))
		}
		if want := []string{"disc-1", "disc-2", "disc-3", "sync-1"}; !reflect.DeepEqual(ids, want) {
			t.Fatalf("credentials %q, want %q", ids, want)
		}
		if !reflect.DeepEqual(cs[0], sampleCred("disc-1", true)) {
			t.Fatalf("disc-1 changed: %+v", cs[0])
		}
		h := CounterKey([]byte("example.com")) // SHA-256, as rpIdHash
		rp, err := f.DiscoverableCredentials(h[:])
		must(t, err)
		if len(rp) != 2 || string(rp[0].ID) != "disc-1" || string(rp[1].ID) != "disc-2" {
			t.Fatalf("example.com discoverable: %d", len(rp))
		}
		if n, _ := f.DiscoverableCount(); n != 3 {
			t.Fatalf("discoverable count %d", n)
		}
		for id, min := range map[string]uint32{"disc-1": 41, "sync-1": 7, "unstored-1": 1000, "unstored-2": 1000} {
			n, err := f.NextSignCount([]byte(id))
			must(t, err)
			if n <= min {
				t.Fatalf("counter %s at %d, not above %d", id, n, min)
			}
		}
		pin, err := f.PINState()
		must(t, err)
		if pin.Retries != 6 || pin.CodePoints != 4 || string(pin.Hash) != "0123456789abcdef" || pin.PersistentToken != nil {
			t.Fatalf("pin %+v", pin)
		}
		cfg, err := f.Config()
		must(t, err)
		if !cfg.AlwaysUV || cfg.MinPINLength != 6 || !reflect.DeepEqual(cfg.MinPINLengthRPIDs, []string{"example.com"}) {
			t.Fatalf("config %+v", cfg)
		}
		lb, err := f.LargeBlobArray()
		must(t, err)
		if string(lb) != "large-blob-array" {
			t.Fatalf("large blob %q", lb)
		}
		id, err := f.Identity()
		must(t, err)
		if string(id.WrapKey) != "0123456789abcdef0123456789abcdef" || string(id.AttestationCACert) != "ca-cert" {
			t.Fatalf("identity %+v", id)
		}
	}
	check(f)
	must(t, f.Close())
	for _, gone := range []string{LegacyStateFileName, migratingFileName} {
		if _, err := os.Stat(filepath.Join(dir, gone)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s left after the conversion: %v", gone, err)
		}
	}
	st, err := os.Stat(filepath.Join(dir, StateFileName))
	must(t, err)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode())
	}
	// Converted once: the second open reads the new store.
	f, err = OpenFile(dir, FileOptions{MasterKey: key})
	must(t, err)
	defer f.Close()
	cs, err := f.Credentials()
	must(t, err)
	if len(cs) != 4 {
		t.Fatalf("%d credentials after reopening", len(cs))
	}
}

// TestMigrateCrashAfterCommit: a conversion that renamed the new store into
// place but died before removing the legacy file opens the new store.
func TestMigrateCrashAfterCommit(t *testing.T) {
	dir := copyFixture(t, "state-v1")
	key := fixtureKey(t, dir)
	legacy, err := os.ReadFile(filepath.Join(dir, LegacyStateFileName))
	must(t, err)
	f, err := OpenFile(dir, FileOptions{MasterKey: key})
	must(t, err)
	must(t, f.DeleteCredential([]byte("disc-1")))
	must(t, f.Close())
	must(t, os.WriteFile(filepath.Join(dir, LegacyStateFileName), legacy, 0o600))
	f, err = OpenFile(dir, FileOptions{MasterKey: key})
	must(t, err)
	defer f.Close()
	if _, err := f.Credential([]byte("disc-1")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the legacy file won over the committed store: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, LegacyStateFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("legacy file kept")
	}
}
