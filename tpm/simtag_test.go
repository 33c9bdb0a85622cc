//go:build cgo && tpmsim

package tpm

import "testing"

// TestOpenSim opens the simulator through Open("sim") (tpmsim builds only).
func TestOpenSim(t *testing.T) {
	tp, err := Open("sim")
	if err != nil {
		t.Fatalf(`Open("sim"): %v`, err)
	}
	defer tp.Close()
	if _, _, err := tp.KeyProvider().Generate(-7); err != nil {
		t.Fatal(err)
	}
}
