package main

import (
	"strings"
	"testing"
)

// TestE2EAlgorithmsAndAAGUIDFlags (issue 13): `vkey run --algorithms` and
// `--aaguid` change what libfido2 reads from getInfo, and an algorithm
// left out is refused (fido2-cred -M es256 against an RS256-only key).
func TestE2EAlgorithmsAndAAGUIDFlags(t *testing.T) {
	needTool(t, "fido2-token", "fido2-cred", "fido2-assert")
	k := startKey(t, "--ephemeral", "--transport", "pty", "--presence", "auto",
		"--algorithms", "rs256,ES384", "--aaguid", "cb69481e-8ff7-4039-93ec-0a2729a154a8")
	info, err := tool(t, "", "fido2-token", "-I", k.Where)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(info, "algorithms: rs256 (public-key), es384 (public-key)") ||
		!strings.Contains(info, "aaguid: cb69481e8ff7403993ec0a2729a154a8") {
		t.Errorf("fido2-token -I does not show the flags' algorithms and AAGUID:\n%s", info)
	}
	id, pub := fido2Register(t, k.Where, "example.com", "rs256")
	fido2Assert(t, k.Where, "example.com", id, pub, "rs256")
	in := randomB64(32) + "\nexample.com\nalice\n" + randomB64(16) + "\n"
	if _, err := tool(t, in, "fido2-cred", "-M", k.Where, "es256"); err == nil || !strings.Contains(err.Error(), "FIDO_ERR_UNSUPPORTED_ALGORITHM") {
		t.Errorf("fido2-cred -M es256 against an RS256/ES384 key: %v, want FIDO_ERR_UNSUPPORTED_ALGORITHM", err)
	}
}

// TestRunFlagErrors: a bad --algorithms or --aaguid is a usage error that
// says what is wanted.
func TestRunFlagErrors(t *testing.T) {
	for _, tc := range []struct{ algs, aaguid, want string }{
		{"ES256,ES999", "", "unknown algorithm"},
		{"ES256,es256", "", "listed twice"},
		{"-19", "", "unknown algorithm"},
		{"", "not-a-uuid", "is not a UUID"},
		{"", "cb69481e8ff7403993ec0a2729a154a8", "is not a UUID"},
	} {
		o := &runOptions{transport: "auto", keys: "auto", uv: "none", name: "x", algorithms: tc.algs, aaguid: tc.aaguid}
		if err := o.validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("--algorithms %q --aaguid %q: %v, want %q", tc.algs, tc.aaguid, err, tc.want)
		}
	}
	got, err := parseAlgorithms(" PS256, es512 ,EdDSA,-7")
	if err != nil || len(got) != 4 || got[0] != -37 || got[1] != -36 || got[2] != -8 || got[3] != -7 {
		t.Errorf("parseAlgorithms: %v %v", got, err)
	}
}
