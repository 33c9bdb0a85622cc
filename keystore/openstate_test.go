package keystore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestParallelFirstStarts starts several vkeys at once on one new state
// folder, 20 times over: one wins, the others are refused with
// *LockedError before they choose a master key, and the winner's key still
// opens the state afterwards (issue 11 point 2: the losers used to
// overwrite the winner's key material).
func TestParallelFirstStarts(t *testing.T) {
	for _, src := range []struct {
		name  string
		prefs MasterKeyPrefs
	}{
		{"keyfile", MasterKeyPrefs{}},
		{"passphrase", MasterKeyPrefs{Passphrase: staticPass("pass"), Argon2: Argon2Params{Time: 1, Memory: 64, Threads: 1}}},
	} {
		t.Run(src.name, func(t *testing.T) {
			for round := 0; round < 20; round++ {
				dir := filepath.Join(t.TempDir(), "state")
				const starts = 4
				var wg sync.WaitGroup
				stores := make(chan *File, starts)
				errs := make(chan error, starts)
				for range starts {
					wg.Add(1)
					go func() {
						defer wg.Done()
						f, _, err := OpenState(context.Background(), dir, src.prefs, FileOptions{})
						if err != nil {
							errs <- err
							return
						}
						must(t, f.SetPINState(PINState{Retries: 5}))
						stores <- f
					}()
				}
				wg.Wait()
				close(stores)
				close(errs)
				won := 0
				for f := range stores {
					won++
					must(t, f.Close())
				}
				for err := range errs {
					if !errors.As(err, new(*LockedError)) {
						t.Fatalf("round %d: a losing start failed with %v, want *LockedError", round, err)
					}
				}
				if won == 0 {
					t.Fatalf("round %d: no start won", round)
				}
				f, _, err := OpenState(context.Background(), dir, src.prefs, FileOptions{})
				if err != nil {
					t.Fatalf("round %d: state unreadable after parallel first starts: %v", round, err)
				}
				p, err := f.PINState()
				must(t, err)
				must(t, f.Close())
				if p.Retries != 5 {
					t.Fatalf("round %d: PIN state %+v", round, p)
				}
			}
		})
	}
}

// TestStateDirNotTakenOver: a non-empty folder that holds no vkey state is
// refused and left as it was; an existing folder keeps its mode (issue 11
// point 7: `--state /tmp` chmodded the system temp folder to 0700).
func TestStateDirNotTakenOver(t *testing.T) {
	other := t.TempDir()
	must(t, os.WriteFile(filepath.Join(other, "notes.txt"), []byte("mine"), 0o644))
	must(t, os.Chmod(other, 0o755))
	if _, err := OpenFile(other, FileOptions{MasterKey: testKey(t)}); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("non-empty foreign folder: %v", err)
	}
	if _, _, err := OpenState(context.Background(), other, MasterKeyPrefs{}, FileOptions{}); err == nil {
		t.Fatal("OpenState took a foreign folder")
	}
	ents, _ := os.ReadDir(other)
	if st, _ := os.Stat(other); len(ents) != 1 || st.Mode().Perm() != 0o755 {
		t.Fatalf("foreign folder changed: %d entries, mode %v", len(ents), st.Mode())
	}

	empty := filepath.Join(t.TempDir(), "empty")
	must(t, os.Mkdir(empty, 0o750))
	must(t, os.Chmod(empty, 0o750))
	f, err := OpenFile(empty, FileOptions{MasterKey: testKey(t)})
	must(t, err)
	must(t, f.Close())
	if st, _ := os.Stat(empty); st.Mode().Perm() != 0o750 {
		t.Fatalf("mode of a folder vkey did not create changed to %v", st.Mode())
	}

	shared := filepath.Join(t.TempDir(), "shared")
	must(t, os.Mkdir(shared, 0o777))
	must(t, os.Chmod(shared, 0o777))
	if _, err := OpenFile(shared, FileOptions{MasterKey: testKey(t)}); err == nil || !strings.Contains(err.Error(), "chmod 700") {
		t.Fatalf("folder writable by others: %v", err)
	}

	file := filepath.Join(t.TempDir(), "file")
	must(t, os.WriteFile(file, nil, 0o600))
	if _, err := OpenFile(file, FileOptions{MasterKey: testKey(t)}); err == nil {
		t.Fatal("a regular file taken as state folder")
	}
}
