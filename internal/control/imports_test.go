package control_test

import (
	"go/build"
	"strings"
	"testing"
)

// TestNoCTAPDecoding: the control API learns what the authenticator did
// from its observer (ctap2.Event), never by decoding CTAP messages, so it
// does not import the CBOR library (issue 15).
func TestNoCTAPDecoding(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		if strings.Contains(imp, "cbor") {
			t.Errorf("package control imports %s", imp)
		}
	}
}
