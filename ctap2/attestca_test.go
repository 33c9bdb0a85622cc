package ctap2_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/internal/webauthntest"
	"github.com/vkey-dev/vkey/keystore"
)

// newTestCA makes a CA certificate signed by parent (self-signed when
// parent is nil) and returns it with its PKCS#8 key.
func newTestCA(t *testing.T, name string, parent *x509.Certificate, parentKey crypto.Signer) (*x509.Certificate, []byte, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{Organization: []string{"Team"}, CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(key)
	return cert, pkcs8, key
}

// TestUserAttestationCA (issue 13, `vkey run --attestation-ca`): packed
// attestation (and enterprise attestation) chains to the user's CA, a root
// or an intermediate, and go-webauthn accepts the registration; the
// installation's own CA is kept for when the option is dropped; a
// certificate that is not a CA or a key that does not match is refused.
func TestUserAttestationCA(t *testing.T) {
	root, rootKey, rootPriv := newTestCA(t, "Team root", nil, nil)
	inter, interKey, _ := newTestCA(t, "Team intermediate", root, rootPriv)
	for _, tc := range []struct {
		name string
		ca   *ctap2.AttestationCA
	}{{"root", &ctap2.AttestationCA{Cert: root.Raw, Key: rootKey}}, {"intermediate", &ctap2.AttestationCA{Cert: inter.Raw, Key: interKey}}} {
		t.Run(tc.name, func(t *testing.T) {
			store := keystore.NewMemory(0)
			own := newKey(t, func(o *ctap2.Options) { o.Store = store })
			ownRoot, _ := own.a.AttestationRoot()
			k := newKey(t, func(o *ctap2.Options) { o.Store, o.AttestationCA, o.Now = store, tc.ca, time.Now })
			rp, err := webauthntest.New("example.com")
			if err != nil {
				t.Fatal(err)
			}
			cred := register(t, k, rp, webauthntest.NewUser("alice"), false, -7)
			x5c := attestationX5C(t, cred)
			leaf, err := x509.ParseCertificate(x5c[0])
			if err != nil {
				t.Fatal(err)
			}
			roots, inters := x509.NewCertPool(), x509.NewCertPool()
			roots.AddCert(root)
			for _, der := range x5c[1:] {
				c, err := x509.ParseCertificate(der)
				if err != nil {
					t.Fatal(err)
				}
				inters.AddCert(c)
			}
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
				t.Errorf("attestation does not chain to the user's root: %v", err)
			}
			if got, _ := k.a.AttestationRoot(); string(got) != string(tc.ca.Cert) {
				t.Error("AttestationRoot is not the user's CA")
			}
			again := newKey(t, func(o *ctap2.Options) { o.Store = store })
			if got, _ := again.a.AttestationRoot(); string(got) != string(ownRoot) {
				t.Error("without the option the installation's own CA is no longer used")
			}
		})
	}

	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	notCA, _ := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(9), NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), BasicConstraintsValid: true}, root, &leafKey.PublicKey, rootPriv)
	leafPKCS8, _ := x509.MarshalPKCS8PrivateKey(leafKey)
	for name, ca := range map[string]*ctap2.AttestationCA{
		"not a CA":          {Cert: notCA, Key: leafPKCS8},
		"key mismatch":      {Cert: root.Raw, Key: interKey},
		"not a key":         {Cert: root.Raw, Key: []byte("x")},
		"not a certificate": {Cert: []byte("x"), Key: rootKey},
	} {
		if _, err := ctap2.New(ctap2.Options{Store: keystore.NewMemory(0), AttestationCA: ca, Now: time.Now}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
