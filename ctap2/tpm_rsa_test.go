package ctap2_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/go-tpm/tpm2"
	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/ctap2/client"
	"github.com/vkey-dev/vkey/internal/clientsummary"
	"github.com/vkey-dev/vkey/internal/swtpmtest"
	"github.com/vkey-dev/vkey/internal/webauthntest"
	"github.com/vkey-dev/vkey/keystore"
	"github.com/vkey-dev/vkey/tpm"
)

// registerDirect registers a credential of alg with direct attestation
// conveyance and returns what go-webauthn made of it, and how long
// makeCredential took.
func registerDirect(t *testing.T, k *testKey, rp *webauthntest.RP, u *webauthntest.User, rk bool, alg int64) (*webauthn.Credential, string, time.Duration) {
	t.Helper()
	cer, err := rp.BeginRegistration(u, webauthn.WithConveyancePreference(protocol.PreferDirectAttestation),
		webauthn.WithCredentialParameters([]protocol.CredentialParameter{{Type: "public-key", Algorithm: webauthncose.COSEAlgorithmIdentifier(alg)}}))
	if err != nil {
		t.Fatal(err)
	}
	req := mcRequest(t, rp.ID, u.ID, rk, alg)
	req.ClientDataHash = cer.ClientDataHash
	req.User.Name = u.Name
	start := time.Now()
	att, err := k.c.MakeCredential(context.Background(), req)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("alg %d: makeCredential: %v", alg, err)
	}
	id, _ := att.CredentialID()
	cred, err := rp.FinishRegistration(u, cer, id, att.Format, att.AuthData, att.AttStmt)
	if err != nil {
		t.Fatalf("alg %d: go-webauthn rejected the %s registration: %v", alg, att.Format, err)
	}
	return cred, att.Format, took
}

// TestTPMRSAWebAuthn (issue 13): on a TPM with RSA-2048 (swtpm), device-bound
// RS256 and PS256 credentials are TPM keys; go-webauthn verifies their
// registrations under none, packed (self and batch) and tpm attestation,
// discoverable or not, and their assertions. Their IDs name the key the
// store keeps, so they stay short; ES512 (P-521) keys are TPM keys too.
func TestTPMRSAWebAuthn(t *testing.T) {
	clientsummary.Record(t, "go-webauthn, TPM keys (swtpm)", "RS256, PS256, ES512 registrations (none, packed-self, packed, tpm) and assertions")
	srv := swtpmtest.Start(t)
	tp := openTPM(t, srv)
	type tc struct {
		format ctap2.AttestationFormat
		alg    int64
		rk     bool
	}
	var cases []tc
	for _, alg := range []int64{-257, -37} {
		for _, f := range []ctap2.AttestationFormat{ctap2.AttestationNone, ctap2.AttestationPackedSelf, ctap2.AttestationPacked, ctap2.AttestationTPM} {
			cases = append(cases, tc{f, alg, false})
		}
		cases = append(cases, tc{ctap2.AttestationTPM, alg, true})
	}
	cases = append(cases, tc{ctap2.AttestationTPM, -36, false})
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/alg%d/rk=%v", c.format, c.alg, c.rk), func(t *testing.T) {
			k := newKey(t, func(o *ctap2.Options) {
				o.DeviceKeys, o.Passkeys, o.Attestation = tp.KeyProvider(), ctap2.DeviceBound, c.format
			})
			rp, err := webauthntest.New("example.com")
			if err != nil {
				t.Fatal(err)
			}
			u := webauthntest.NewUser("alice")
			cred, format, took := registerDirect(t, k, rp, u, c.rk, c.alg)
			want := map[ctap2.AttestationFormat]string{ctap2.AttestationNone: "none", ctap2.AttestationPackedSelf: "packed",
				ctap2.AttestationPacked: "packed", ctap2.AttestationTPM: "tpm"}[c.format]
			if format != want {
				t.Errorf("format %q, want %q", format, want)
			}
			if len(cred.ID) > 512 {
				t.Errorf("%d-byte credential ID, more than maxCredentialIdLength", len(cred.ID))
			}
			if c.alg != -36 {
				stored, err := k.store.Credential(cred.ID)
				if err != nil || stored.Provider != tpm.ProviderName || stored.Discoverable != c.rk {
					t.Fatalf("stored credential %+v (%v): want the TPM key stored", stored, err)
				}
			}
			u.Credentials = append(u.Credentials, *cred)
			start := time.Now()
			loginTwice(t, k, rp, u, c.rk, cred.Authenticator.SignCount)
			t.Logf("%d-byte ID; makeCredential %v, getAssertion %v", len(cred.ID), took.Round(time.Millisecond), (time.Since(start) / 2).Round(time.Millisecond))
		})
	}
}

// TestTPMRSAKeyInTPM (issue 13): the store holds an RS256 credential's key
// only as the TPM's wrapped blob: no software key loads from it, the key
// it names is non-exportable (fixedTPM, fixedParent) and its credential
// has BE=0; another TPM, with the same store, cannot sign with it.
func TestTPMRSAKeyInTPM(t *testing.T) {
	tpA := openTPM(t, swtpmtest.Start(t))
	store := keystore.NewMemory(0)
	a := newTPMAuthenticator(t, tpA, store)
	k := &testKey{a: a, c: client.New(client.Direct{A: a}), store: store}
	rp, err := webauthntest.New("example.com")
	if err != nil {
		t.Fatal(err)
	}
	u := webauthntest.NewUser("alice")
	cred, _, _ := registerDirect(t, k, rp, u, false, -257)
	if cred.Flags.BackupEligible || cred.Flags.BackupState {
		t.Errorf("flags %+v: a TPM key is device-bound (BE=0)", cred.Flags)
	}
	stored, err := store.Credential(cred.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantTPMOnlyKey(t, tpA, keystore.AlgRS256, stored.KeyBlob, tpm2.TPMAlgRSA)
	u.Credentials = append(u.Credentials, *cred)
	login(t, k, rp, u, nil)

	// The same store in front of another TPM: the credential is not there.
	tpB := openTPM(t, swtpmtest.Start(t))
	b := newTPMAuthenticator(t, tpB, store)
	kb := &testKey{a: b, c: client.New(client.Direct{A: b}), store: store}
	wantStatus(t, assertWith(kb, rp.ID, cred.ID), ctap2.ErrNoCredentials)
	if _, err := tpB.KeyProvider().Load(keystore.AlgRS256, stored.KeyBlob); err == nil {
		t.Error("another TPM loads the key")
	}
}

// wantTPMOnlyKey checks that blob, a stored credential's key, is only the
// TPM's wrapped blob: no software key loads from it, and the key tp loads
// from it is of keyType and non-exportable (fixedTPM, fixedParent,
// sensitiveDataOrigin). It returns that key.
func wantTPMOnlyKey(t *testing.T, tp *tpm.TPM, alg keystore.Algorithm, blob []byte, keyType tpm2.TPMAlgID) keystore.Key {
	t.Helper()
	if _, err := x509.ParsePKCS8PrivateKey(blob); err == nil {
		t.Fatal("the stored blob is a software private key")
	}
	if _, err := (keystore.Software{}).Load(alg, blob); err == nil {
		t.Fatal("the stored blob loads as a software key")
	}
	key, err := tp.KeyProvider().Load(alg, blob)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := tpm2.Unmarshal[tpm2.TPMTPublic](key.(*tpm.Key).PubArea())
	if err != nil {
		t.Fatal(err)
	}
	if a := pub.ObjectAttributes; pub.Type != keyType || !a.FixedTPM || !a.FixedParent || !a.SensitiveDataOrigin {
		t.Errorf("key type 0x%x attributes %+v: want a non-exportable TPM key of type 0x%x", pub.Type, a, keyType)
	}
	return key
}
