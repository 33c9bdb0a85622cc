package keystore

import (
	"strconv"
	"strings"
)

// Name is the algorithm's name in the IANA COSE registry (ES256, EdDSA,
// ...), its number for one vkey does not know, and "" for 0 (the
// algorithm of a key that could not be read).
func (a Algorithm) Name() string {
	switch a {
	case 0:
		return ""
	case AlgES256:
		return "ES256"
	case AlgEdDSA:
		return "EdDSA"
	case AlgEd25519:
		return "Ed25519"
	case AlgES384:
		return "ES384"
	case AlgES512:
		return "ES512"
	case AlgPS256:
		return "PS256"
	case AlgRS256:
		return "RS256"
	}
	return strconv.FormatInt(int64(a), 10)
}

// AlgorithmNamed is the inverse of Name, case-insensitive; it also takes
// the COSE number of an algorithm Name knows.
func AlgorithmNamed(name string) (Algorithm, bool) {
	if n, err := strconv.ParseInt(name, 10, 64); err == nil {
		return Algorithm(n), n != 0 && Algorithm(n).Name() != name
	}
	for _, alg := range []Algorithm{AlgES256, AlgEdDSA, AlgEd25519, AlgES384, AlgES512, AlgPS256, AlgRS256} {
		if strings.EqualFold(alg.Name(), name) {
			return alg, true
		}
	}
	return 0, false
}
