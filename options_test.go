package vkey

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vkey-dev/vkey/keystore"
)

// TestParseAlgorithms: names in any case and known numbers, in the order
// given; unknown, unoffered (Ed25519) and repeated ones are refused.
func TestParseAlgorithms(t *testing.T) {
	got, err := ParseAlgorithms(" PS256, es512 ,EdDSA,-7")
	if want := []keystore.Algorithm{-37, -36, -8, -7}; err != nil || !slices.Equal(got, want) {
		t.Errorf("ParseAlgorithms: %v %v, want %v", got, err, want)
	}
	for list, twice := range map[string]bool{"ES256,ES999": false, "-19": false, "0": false, "ES256,es256": true} {
		var e *AlgorithmListError
		if _, err := ParseAlgorithms(list); !errors.As(err, &e) || e.Twice != twice {
			t.Errorf("%q: %v", list, err)
		}
	}
}

// TestAAGUIDText: ParseAAGUID reads what FormatAAGUID writes and refuses
// what is not a UUID.
func TestAAGUIDText(t *testing.T) {
	const s = "766b6579-2d76-6972-7475-616c2d6b6579"
	a, err := ParseAAGUID(s)
	if err != nil || FormatAAGUID(a[:]) != s {
		t.Errorf("%s: %x %v -> %s", s, a, err, FormatAAGUID(a[:]))
	}
	for _, bad := range []string{"not-a-uuid", "766b65792d7669727475616c2d6b6579", "766b6579-2d76-6972-7475-616c2d6b65", "766b6579-2d7669-72-7475-616c2d6b6579"} {
		if _, err := ParseAAGUID(bad); err == nil || !strings.Contains(err.Error(), "is not a UUID") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// TestLoadAttestationCA: a certificate and an SEC 1 EC key are read (the
// key as PKCS#8); a file without the wanted PEM block is refused by name.
func TestLoadAttestationCA(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"}, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}), 0o600); err != nil {
		t.Fatal(err)
	}
	ca, err := LoadAttestationCA(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if k, err := x509.ParsePKCS8PrivateKey(ca.Key); err != nil || !priv.Equal(k) || !slices.Equal(ca.Cert, der) {
		t.Errorf("CA read as %v %v", k, err)
	}
	if _, err := LoadAttestationCA(keyFile, keyFile); err == nil || !strings.Contains(err.Error(), "holds no PEM CERTIFICATE") {
		t.Errorf("a key as certificate: %v", err)
	}
	if _, err := LoadAttestationCA(certFile, certFile); err == nil || !strings.Contains(err.Error(), "holds no PEM PRIVATE KEY") {
		t.Errorf("a certificate as key: %v", err)
	}
}
