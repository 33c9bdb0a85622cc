package clientsummary

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeTB is a test whose outcome the test sets.
type fakeTB struct {
	testing.TB
	failed, skipped bool
	cleanups        []func()
}

func (f *fakeTB) Helper()           {}
func (f *fakeTB) Name() string      { return "TestFake" }
func (f *fakeTB) Failed() bool      { return f.failed }
func (f *fakeTB) Skipped() bool     { return f.skipped }
func (f *fakeTB) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }
func (f *fakeTB) end() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}

// TestRecord: a line says PASS only for a test that ended without failing
// or skipping; nothing is written without VKEY_CLIENT_SUMMARY.
func TestRecord(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(Env, "")
	off := &fakeTB{TB: t}
	Record(off, "nobody", "nothing")
	off.end()
	if _, err := os.Stat(filepath.Join(dir, FileName)); !os.IsNotExist(err) {
		t.Fatalf("a summary was written without %s: %v", Env, err)
	}

	t.Setenv(Env, dir)
	for _, f := range []*fakeTB{{TB: t}, {TB: t, failed: true}, {TB: t, skipped: true}} {
		Record(f, "a client,\n  pty", "what it\tproved")
		f.end()
	}
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"PASS a client, pty: what it proved",
		"FAIL a client, pty: what it proved",
		"SKIP a client, pty: what it proved (skipped: TestFake, run go test -v for why)",
	}
	if got := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("summary:\n%s\nwant:\n%s", b, strings.Join(want, "\n"))
	}
}
