package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vkey-dev/vkey/ctap2"
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

// TestE2EAttestationCAFlag (issue 13): with `--attestation-ca CERT,KEY`
// (a SEC 1 PEM key), the packed x5c of a registration chains to the
// user's CA.
func TestE2EAttestationCAFlag(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Team attestation root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageCertSign,
		BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	sec1, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key")
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}), 0o600)

	k := startKey(t, "--ephemeral", "--transport", "pty", "--presence", "auto", "--attestation-ca", certFile+","+keyFile)
	c := dial(t, k.Where)
	att, err := c.MakeCredential(context.Background(), &ctap2.MakeCredentialRequest{
		ClientDataHash: make([]byte, 32), RP: &ctap2.RPEntity{ID: "example.com"},
		User: &ctap2.UserEntity{ID: []byte{1}, Name: "alice"}, PubKeyCredParams: esParams(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	var stmt struct {
		X5C [][]byte `cbor:"x5c"`
	}
	if err := ctap2.Unmarshal(att.AttStmt, &stmt); err != nil || len(stmt.X5C) != 1 {
		t.Fatalf("attStmt x5c: %v (%d certificates)", err, len(stmt.X5C))
	}
	leaf, err := x509.ParseCertificate(stmt.X5C[0])
	if err != nil {
		t.Fatal(err)
	}
	root, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(root)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Errorf("attestation does not chain to the --attestation-ca root: %v", err)
	}
}
