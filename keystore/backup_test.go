package keystore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

type storeMaker struct {
	name string
	make func(t *testing.T) Store
}

func storeMakers() []storeMaker {
	return []storeMaker{
		{"memory", func(t *testing.T) Store { return NewMemory(0) }},
		{"file", func(t *testing.T) Store {
			f := openT(t, t.TempDir(), testKey(t))
			t.Cleanup(func() { f.Close() })
			return f
		}},
	}
}

// storeState captures everything import may change, for "nothing changed".
func storeState(t *testing.T, s Store) ([]*Credential, map[string]uint32) {
	t.Helper()
	cs, err := s.Credentials()
	must(t, err)
	counts := map[string]uint32{}
	for _, c := range cs {
		n, err := s.SignCount(c.ID)
		must(t, err)
		counts[string(c.ID)] = n
	}
	return cs, counts
}

func testExport(t *testing.T, s Store, pass string) []byte {
	t.Helper()
	b, err := exportSyncable(s, nil, []byte(pass), fastArgon2, true)
	must(t, err)
	return b
}

func TestBackupExportImport(t *testing.T) {
	for _, mk := range storeMakers() {
		t.Run(mk.name, func(t *testing.T) {
			src := mk.make(t)
			sync1 := sampleCred("sync-1", true)
			sync2 := sampleCred("sync-2", false) // non-discoverable syncable
			bound := sampleCred("bound", true)
			bound.BackupEligible = false
			bound.KeyBlob = []byte("DEVICE-BOUND-KEY-BLOB-0123456789")
			for _, c := range []*Credential{sync1, sync2, bound} {
				must(t, src.PutCredential(c))
			}
			must(t, src.SetSignCount(sync1.ID, 41))
			must(t, src.SetSignCount(sync2.ID, 7))

			data := testExport(t, src, "backup pass")
			if bytes.Contains(data, sync1.KeyBlob) || bytes.Contains(data, bound.KeyBlob) || bytes.Contains(data, []byte("example.com")) {
				t.Fatal("backup file holds plaintext")
			}
			// Exported credentials are now BS=1 in the source; the device-bound one is untouched.
			for _, id := range [][]byte{sync1.ID, sync2.ID} {
				c, err := src.Credential(id)
				must(t, err)
				if !c.BackupState {
					t.Errorf("%s not marked backed up", id)
				}
			}
			if c, _ := src.Credential(bound.ID); c.BackupState {
				t.Error("device-bound credential marked backed up")
			}

			dst := mk.make(t)
			rep, err := Import(dst, data, []byte("backup pass"))
			must(t, err)
			if len(rep.Added) != 2 || len(rep.Skipped) != 0 || len(rep.Refused) != 0 {
				t.Fatalf("report %+v", rep)
			}
			if _, err := dst.Credential(bound.ID); !errors.Is(err, ErrNotFound) {
				t.Fatal("device-bound credential was exported")
			}
			got, err := dst.Credential(sync1.ID)
			must(t, err)
			want := sync1.Clone()
			want.BackupState = true
			got.Created = want.Created
			if !reflect.DeepEqual(got, want) {
				t.Errorf("imported %+v\nwant %+v", got, want)
			}
			if n, _ := dst.SignCount(sync1.ID); n != 41 {
				t.Errorf("counter %d, want 41", n)
			}
			if n, _ := dst.NextSignCount(sync2.ID); n != 8 {
				t.Errorf("next counter %d, want 8", n)
			}

			// Second import: everything already present; counters keep the higher.
			must(t, dst.SetSignCount(sync2.ID, 100)) // dst's is higher
			must(t, src.SetSignCount(sync1.ID, 500)) // src's is higher
			data2 := testExport(t, src, "backup pass")
			rep, err = Import(dst, data2, []byte("backup pass"))
			must(t, err)
			if len(rep.Added) != 0 || len(rep.Skipped) != 2 || len(rep.Refused) != 0 {
				t.Fatalf("second report %+v", rep)
			}
			if n, _ := dst.SignCount(sync1.ID); n != 500 {
				t.Errorf("sync-1 counter %d, want 500 (the file's, higher)", n)
			}
			if n, _ := dst.SignCount(sync2.ID); n != 100 {
				t.Errorf("sync-2 counter %d, want 100 (this key's, higher)", n)
			}
			for _, it := range rep.Skipped {
				if string(it.ID) == "sync-1" && !strings.Contains(it.Reason, "raised to 500") {
					t.Errorf("reason %q", it.Reason)
				}
			}
		})
	}
}

func TestBackupRefusals(t *testing.T) {
	for _, mk := range storeMakers() {
		t.Run(mk.name, func(t *testing.T) {
			ok := sampleCred("ok", true)
			bound := sampleCred("bound-in-file", true)
			bound.BackupEligible = false
			clash := sampleCred("clash", true)
			doc := backupDoc{Version: backupDocVersion, Entries: []backupEntry{
				{Credential: ok, SignCount: 3},
				{Credential: bound, SignCount: 3},
				{Credential: clash, SignCount: 3},
				{Credential: &Credential{ID: []byte("empty"), BackupEligible: true}},
			}}
			data, err := sealBackup(&doc, []byte("pw"), fastArgon2)
			must(t, err)
			dst := mk.make(t)
			local := clash.Clone() // device-bound here with the same ID
			local.BackupEligible = false
			must(t, dst.PutCredential(local))
			rep, err := Import(dst, data, []byte("pw"))
			must(t, err)
			if len(rep.Added) != 1 || string(rep.Added[0].ID) != "ok" || len(rep.Refused) != 3 {
				t.Fatalf("report %+v", rep)
			}
			if !strings.Contains(rep.Refused[0].Reason, "device-bound") || !strings.Contains(rep.Refused[1].Reason, "device-bound") {
				t.Errorf("reasons %q / %q", rep.Refused[0].Reason, rep.Refused[1].Reason)
			}
			if _, err := dst.Credential(bound.ID); !errors.Is(err, ErrNotFound) {
				t.Error("refused credential was stored")
			}
			if c, _ := dst.Credential(clash.ID); c.BackupEligible {
				t.Error("device-bound credential was overwritten")
			}
		})
	}
}

func TestBackupWrongPassphrase(t *testing.T) {
	for _, mk := range storeMakers() {
		t.Run(mk.name, func(t *testing.T) {
			src := mk.make(t)
			must(t, src.PutCredential(sampleCred("a", true)))
			data := testExport(t, src, "right")
			dst := mk.make(t)
			must(t, dst.PutCredential(sampleCred("local", true)))
			must(t, dst.SetSignCount([]byte("local"), 5))
			beforeC, beforeN := storeState(t, dst)
			_, err := Import(dst, data, []byte("wrong"))
			if !errors.Is(err, ErrWrongPassphrase) || !strings.Contains(err.Error(), "wrong passphrase") {
				t.Fatalf("wrong passphrase: %v", err)
			}
			// Tampered header (salt, parameters, nonce) or body: rejected too.
			for _, i := range []int{9, 12, 16, 18, 22, len(data) - 30, len(data) - 1} {
				bad := append([]byte(nil), data...)
				bad[i] ^= 1
				if _, err := Import(dst, bad, []byte("right")); err == nil {
					t.Fatalf("byte %d flipped: import succeeded", i)
				}
			}
			if _, err := Import(dst, []byte("garbage"), []byte("right")); !errors.Is(err, ErrBadBackup) {
				t.Fatalf("garbage: %v", err)
			}
			afterC, afterN := storeState(t, dst)
			if !reflect.DeepEqual(beforeC, afterC) || !reflect.DeepEqual(beforeN, afterN) {
				t.Fatal("failed import changed the store")
			}
			if _, err := Import(dst, data, []byte("right")); err != nil {
				t.Fatalf("right passphrase after failures: %v", err)
			}
		})
	}
}

func TestExportSelected(t *testing.T) {
	s := NewMemory(0)
	bound := sampleCred("bound", true)
	bound.BackupEligible = false
	must(t, s.PutCredential(bound))
	must(t, s.PutCredential(sampleCred("sync", true)))
	_, err := ExportSelected(s, [][]byte{[]byte("sync"), []byte("bound")}, []byte("pw"))
	var dbe *DeviceBoundError
	if !errors.As(err, &dbe) || !strings.Contains(err.Error(), "device-bound") {
		t.Fatalf("device-bound export: %v", err)
	}
	if c, _ := s.Credential([]byte("sync")); c.BackupState {
		t.Fatal("refused export marked a credential")
	}
	if _, err := ExportSelected(s, [][]byte{[]byte("nope")}, []byte("pw")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	if _, err := ExportSyncable(s, nil); err == nil {
		t.Fatal("empty passphrase accepted")
	}
}

// TestBackupImportBoundsArgon2: a backup file asking for more argon2id
// memory or passes than MaxImportArgon2 is refused at once with a clear
// error, before any key derivation (issue 11 point 17).
func TestBackupImportBoundsArgon2(t *testing.T) {
	s := NewMemory(0)
	c := sampleCred("sync", false)
	must(t, s.PutCredential(c))
	for _, p := range []Argon2Params{
		{Time: 1, Memory: 4 * 1024 * 1024, Threads: 1}, // 4 GiB
		{Time: 64, Memory: 64, Threads: 1},
	} {
		data, err := sealBackup(&backupDoc{Version: backupDocVersion}, []byte("pass"), Argon2Params{Time: 1, Memory: 64, Threads: 1})
		must(t, err)
		// Rewrite the header's parameters as a crafted file would.
		binary.BigEndian.PutUint32(data[10:], p.Time)
		binary.BigEndian.PutUint32(data[14:], p.Memory)
		start := time.Now()
		_, err = Import(NewMemory(0), data, []byte("pass"))
		if !errors.Is(err, ErrBackupTooCostly) || !strings.Contains(err.Error(), "MiB") {
			t.Fatalf("%+v: got %v, want ErrBackupTooCostly", p, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("%+v: refused only after %v", p, d)
		}
	}
}

// TestDeviceBoundErrorU2F: a stored U2F credential has no RP ID, so the
// error names it as a U2F credential rather than "for " and nothing.
func TestDeviceBoundErrorU2F(t *testing.T) {
	u2f := (&DeviceBoundError{ID: []byte{1, 2}}).Error()
	if want := "credential 0102 (a U2F credential) is device-bound and never leaves this key"; u2f != want {
		t.Fatalf("U2F: %q, want %q", u2f, want)
	}
	rp := (&DeviceBoundError{ID: []byte{1, 2}, RPID: "example.com"}).Error()
	if want := "credential 0102 for example.com is device-bound and never leaves this key"; rp != want {
		t.Fatalf("RP: %q, want %q", rp, want)
	}
	// The RP ID comes from a request: it reaches a terminal escaped.
	hostile := (&DeviceBoundError{ID: []byte{1, 2}, RPID: "evil\x1b[2J.example\n"}).Error()
	if strings.ContainsAny(hostile, "\x1b\n") {
		t.Fatalf("hostile RP ID printed raw: %q", hostile)
	}
}
