package keystore

import "testing"

// TestAlgorithmNames: Name and AlgorithmNamed are inverse (names in any
// case, known numbers); unknown names and numbers are refused.
func TestAlgorithmNames(t *testing.T) {
	for _, alg := range append([]Algorithm{AlgEd25519}, SoftwareAlgorithms...) {
		if got, ok := AlgorithmNamed(alg.Name()); !ok || got != alg {
			t.Errorf("%d: named %q, read back %d %v", alg, alg.Name(), got, ok)
		}
	}
	for name, want := range map[string]Algorithm{"es256": AlgES256, "EDDSA": AlgEdDSA, "-257": AlgRS256, "-37": AlgPS256} {
		if got, ok := AlgorithmNamed(name); !ok || got != want {
			t.Errorf("%q: %d %v, want %d", name, got, ok, want)
		}
	}
	for _, name := range []string{"ES999", "", "-5", "0"} {
		if alg, ok := AlgorithmNamed(name); ok {
			t.Errorf("%q read as %d", name, alg)
		}
	}
	if Algorithm(-5).Name() != "-5" || Algorithm(0).Name() != "" {
		t.Error("unknown algorithms are not named by number")
	}
}
