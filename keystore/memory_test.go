package keystore

import (
	"errors"
	"math"
	"testing"
)

// TestMemoryCounterNeverWraps: a counter at its maximum refuses to go on
// rather than start again from 0.
func TestMemoryCounterNeverWraps(t *testing.T) {
	m := NewMemory(0)
	id := []byte("cred")
	if err := m.PutCredential(&Credential{ID: id, RPID: "example.com"}); err != nil {
		t.Fatal(err)
	}
	if err := m.SetSignCount(id, math.MaxUint32-1); err != nil {
		t.Fatal(err)
	}
	if n, err := m.NextSignCount(id); err != nil || n != math.MaxUint32 {
		t.Fatalf("got %d, %v", n, err)
	}
	if _, err := m.NextSignCount(id); !errors.Is(err, ErrCounterExhausted) {
		t.Fatalf("past the maximum: %v, want ErrCounterExhausted", err)
	}
}
