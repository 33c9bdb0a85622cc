package keystore

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestExportFile: the file is 0600 and holds every syncable credential; an
// existing file is kept unless replace; a failed write leaves no file and
// marks nothing backed up; a written one marks what it holds.
func TestExportFile(t *testing.T) {
	s := NewMemory(0)
	bound := sampleCred("bound", true)
	bound.BackupEligible = false
	must(t, s.PutCredential(bound))
	must(t, s.PutCredential(sampleCred("sync", true)))
	backedUp := func(id string) bool {
		c, err := s.Credential([]byte(id))
		must(t, err)
		return c.BackupState
	}

	dir := t.TempDir()
	if _, err := ExportFile(s, nil, []byte("pw"), filepath.Join(dir, "missing", "b"), false); err == nil || backedUp("sync") {
		t.Fatalf("export into a missing folder: %v, marked %v", err, backedUp("sync"))
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("a failed export left %v", ents)
	}

	path := filepath.Join(dir, "b")
	must(t, os.WriteFile(path, []byte("old"), 0o644))
	if _, err := ExportFile(s, nil, []byte("pw"), path, false); !errors.Is(err, fs.ErrExist) || backedUp("sync") {
		t.Fatalf("export over a file: %v, marked %v", err, backedUp("sync"))
	}
	n, err := ExportFile(s, nil, []byte("pw"), path, true)
	if err != nil || n != 1 || !backedUp("sync") || backedUp("bound") {
		t.Fatalf("export: %d %v, marked sync %v bound %v", n, err, backedUp("sync"), backedUp("bound"))
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v", fi, err)
	}
	if _, err := os.Stat(path + ".tmp"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("temporary file left: %v", err)
	}
	data, err := os.ReadFile(path)
	must(t, err)
	rep, err := Import(NewMemory(0), data, []byte("pw"))
	if err != nil || len(rep.Added) != 1 || string(rep.Added[0].ID) != "sync" {
		t.Fatalf("import of the file: %+v %v", rep, err)
	}
	var dbe *DeviceBoundError
	if _, err := ExportFile(s, [][]byte{[]byte("bound")}, []byte("pw"), filepath.Join(dir, "c"), false); !errors.As(err, &dbe) {
		t.Fatalf("device-bound export: %v", err)
	}
}
