package ctap2_test

import (
	"context"
	"testing"

	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/ctap2/client"
	"github.com/vkey-dev/vkey/internal/swtpmtest"
	"github.com/vkey-dev/vkey/internal/webauthntest"
	"github.com/vkey-dev/vkey/keystore"
)

// TestTPMES384WebAuthn (issue 13): on a TPM with P-384 (swtpm), a
// device-bound ES384 credential is a TPM key, with "tpm" attestation that
// go-webauthn verifies, within maxCredentialIdLength, and its assertions
// verify; so is an RS256 one, whose key the store keeps
// (TestTPMRSAWebAuthn).
func TestTPMES384WebAuthn(t *testing.T) {
	srv := swtpmtest.Start(t)
	tp := openTPM(t, srv)
	a := newTPMAuthenticator(t, tp, keystore.NewMemory(0))
	k := &testKey{a: a, c: client.New(client.Direct{A: a})}
	info, err := k.c.GetInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		alg    int64
		format string
	}{{-35, "tpm"}, {-257, "tpm"}} {
		rp, err := webauthntest.New("example.com")
		if err != nil {
			t.Fatal(err)
		}
		u := webauthntest.NewUser("alice")
		cred, format, _ := registerDirect(t, k, rp, u, false, tc.alg)
		t.Logf("alg %d: %s attestation, %d-byte credential ID", tc.alg, format, len(cred.ID))
		if format != tc.format || len(cred.ID) > int(info.MaxCredentialIDLength) {
			t.Errorf("alg %d: format %q, ID of %d bytes: want %q within %d", tc.alg, format, len(cred.ID), tc.format, info.MaxCredentialIDLength)
		}
		u.Credentials = append(u.Credentials, *cred)
		login(t, k, rp, u, nil)
	}
}

// TestTPMAttestationUserCAAndMetadata (issue 13): "tpm" attestation (ES256,
// ES384, ES512, RS256 and PS256) under the user's CA, checked by a
// go-webauthn relying party against the key's MDS3 statement (trust anchor
// the user's root, attca).
func TestTPMAttestationUserCAAndMetadata(t *testing.T) {
	root, rootKey, _ := newTestCA(t, "Team root", nil, nil)
	srv := swtpmtest.Start(t)
	tp := openTPM(t, srv)
	a, err := ctap2.New(ctap2.Options{Store: keystore.NewMemory(0), DeviceKeys: tp.KeyProvider(), Presence: ctap2.AutoPresence{},
		Attestation: ctap2.AttestationTPM, AttestationCA: &ctap2.AttestationCA{Cert: root.Raw, Key: rootKey}})
	if err != nil {
		t.Fatal(err)
	}
	k := &testKey{a: a, c: client.New(client.Direct{A: a})}
	info, err := a.Info()
	if err != nil {
		t.Fatal(err)
	}
	stmt, err := ctap2.MetadataStatement(info, [][]byte{root.Raw}, "")
	if err != nil {
		t.Fatal(err)
	}
	rp := mdsRP(t, stmt)
	for _, alg := range []int64{-7, -35, -36, -257, -37} {
		u := webauthntest.NewUser("alice")
		// registerDirect has the MDS-checking relying party verify it.
		if _, format, _ := registerDirect(t, k, rp, u, false, alg); format != "tpm" {
			t.Errorf("alg %d: %s attestation, want tpm", alg, format)
		}
	}
}
