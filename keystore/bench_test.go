package keystore

import "testing"

// BenchmarkNextSignCountMemory is the baseline for
// BenchmarkNextSignCountFile (goal: the file store at >= 80% of this).
func BenchmarkNextSignCountMemory(b *testing.B) {
	m := NewMemory(0)
	id := []byte("benchmark-credential-id-0123456789abcdef")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.NextSignCount(id); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNextSignCountFile measures NextSignCount on the persistent
// store, including the reservation writes (with fsync) it makes.
func BenchmarkNextSignCountFile(b *testing.B) {
	f, err := OpenFile(b.TempDir(), FileOptions{MasterKey: testKey(b)})
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	for i := 0; i < 50; i++ { // a realistic state: some credentials
		if err := f.PutCredential(sampleCred(string(rune('A'+i)), true)); err != nil {
			b.Fatal(err)
		}
	}
	id := []byte("benchmark-credential-id-0123456789abcdef")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.NextSignCount(id); err != nil {
			b.Fatal(err)
		}
	}
}
