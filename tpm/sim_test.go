//go:build cgo

package tpm

import (
	"testing"

	"github.com/google/go-tpm/tpm2/transport/simulator"
)

// TestSimulator runs the same checks against go-tpm-tools' in-process
// reference simulator (needs cgo).
func TestSimulator(t *testing.T) {
	tp := openSimulator(t)
	exercise(t, tp)
}

// TestSimulatorRSA runs the RS256/PS256 checks against the reference
// simulator.
func TestSimulatorRSA(t *testing.T) {
	tp := openSimulator(t)
	t.Logf("simulator curves: %v", tp.capabilities().curves)
	testRSA(t, tp)
}

// openSimulator starts the reference simulator; it stops with the test.
func openSimulator(t *testing.T) *TPM {
	t.Helper()
	st, err := simulator.OpenSimulator()
	if err != nil {
		t.Fatalf("open simulator: %v", err)
	}
	tp, err := newTPM(st, "simulator")
	if err != nil {
		t.Fatalf("newTPM(simulator): %v", err)
	}
	t.Cleanup(func() { _ = tp.Close() })
	return tp
}
