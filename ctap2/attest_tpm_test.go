package ctap2_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/ctap2/client"
	"github.com/vkey-dev/vkey/internal/swtpmtest"
	"github.com/vkey-dev/vkey/internal/webauthntest"
	"github.com/vkey-dev/vkey/keystore"
	"github.com/vkey-dev/vkey/tpm"
)

// Object identifiers the AIK certificate must carry (WebAuthn section 8.3.1),
// written out here rather than shared with the code under test.
var (
	testOIDSAN          = asn1.ObjectIdentifier{2, 5, 29, 17}
	testOIDManufacturer = asn1.ObjectIdentifier{2, 23, 133, 2, 1}
	testOIDModel        = asn1.ObjectIdentifier{2, 23, 133, 2, 2}
	testOIDVersion      = asn1.ObjectIdentifier{2, 23, 133, 2, 3}
	testOIDAIKCert      = asn1.ObjectIdentifier{2, 23, 133, 8, 3}
	testOIDAAGUID       = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 45724, 1, 1, 4}
)

// openTPM opens the TPM served by srv; it is closed when the test ends.
func openTPM(tb testing.TB, srv *swtpmtest.Server) *tpm.TPM {
	tb.Helper()
	tp, err := tpm.Open(srv.Spec())
	if err != nil {
		tb.Fatalf("tpm.Open(%s): %v", srv.Spec(), err)
	}
	tb.Cleanup(func() { _ = tp.Close() })
	return tp
}

// newTPMAuthenticator is an authenticator whose device-bound keys live in
// tp, with tpm attestation and a touch that always comes.
func newTPMAuthenticator(tb testing.TB, tp *tpm.TPM, store keystore.Store) *ctap2.Authenticator {
	tb.Helper()
	return newTPMAuthenticatorLog(tb, tp, store, nil)
}

// newTPMAuthenticatorLog is newTPMAuthenticator with a logger (nil: none).
func newTPMAuthenticatorLog(tb testing.TB, tp *tpm.TPM, store keystore.Store, log *slog.Logger) *ctap2.Authenticator {
	tb.Helper()
	a, err := ctap2.New(ctap2.Options{
		Store:       store,
		DeviceKeys:  tp.KeyProvider(),
		Presence:    ctap2.AutoPresence{},
		Attestation: ctap2.AttestationTPM,
		Passkeys:    ctap2.DeviceBound,
		Logger:      log,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

func es256Params(testing.TB) []ctap2.CredentialParameter {
	return []ctap2.CredentialParameter{{Type: "public-key", Alg: int64(keystore.AlgES256)}}
}

// tpmStatement is the tpm attestation statement (WebAuthn section 8.3).
type tpmStatement struct {
	Ver      string   `cbor:"ver"`
	Alg      int64    `cbor:"alg"`
	X5C      [][]byte `cbor:"x5c"`
	Sig      []byte   `cbor:"sig"`
	CertInfo []byte   `cbor:"certInfo"`
	PubArea  []byte   `cbor:"pubArea"`
}

// TestTPMAttestationWebAuthn registers a TPM-backed credential with tpm
// attestation and logs in with it, both checked by go-webauthn.
func TestTPMAttestationWebAuthn(t *testing.T) {
	srv := swtpmtest.Start(t)
	tp := openTPM(t, srv)
	a := newTPMAuthenticator(t, tp, keystore.NewMemory(0))
	c := client.New(client.Direct{A: a})
	ctx := context.Background()

	rp, err := webauthntest.New("example.com")
	if err != nil {
		t.Fatal(err)
	}
	u := webauthntest.NewUser("alice")
	reg, err := rp.BeginRegistration(u, webauthn.WithConveyancePreference(protocol.PreferDirectAttestation))
	if err != nil {
		t.Fatal(err)
	}
	att, err := c.MakeCredential(ctx, &ctap2.MakeCredentialRequest{
		ClientDataHash:   reg.ClientDataHash,
		RP:               &ctap2.RPEntity{ID: rp.ID, Name: "Example"},
		User:             &ctap2.UserEntity{ID: u.ID, Name: u.Name},
		PubKeyCredParams: es256Params(t),
	})
	if err != nil {
		t.Fatalf("makeCredential: %v", err)
	}
	if att.Format != "tpm" {
		t.Fatalf("attestation format %q, want tpm", att.Format)
	}
	if flags := att.AuthData[32]; flags&0x18 != 0 {
		t.Errorf("authData flags %#02x: BE/BS set on a device-bound TPM credential", flags)
	}
	credID, err := att.CredentialID()
	if err != nil {
		t.Fatal(err)
	}
	var stmt tpmStatement
	if err := cbor.Unmarshal(att.AttStmt, &stmt); err != nil {
		t.Fatalf("attStmt: %v", err)
	}
	if stmt.Ver != "2.0" || stmt.Alg != int64(keystore.AlgES256) {
		t.Errorf("ver %q alg %d, want 2.0 and -7", stmt.Ver, stmt.Alg)
	}
	if len(stmt.X5C) != 1 {
		t.Fatalf("x5c has %d certificates, want the AIK certificate only (the root is the RP's trust anchor)", len(stmt.X5C))
	}
	checkAIKCertificate(t, a, tp, stmt.X5C[0])

	// go-webauthn must notice a statement that was tampered with, or the
	// acceptance below proves nothing.
	tampered := stmt
	tampered.CertInfo = append([]byte(nil), stmt.CertInfo...)
	tampered.CertInfo[len(tampered.CertInfo)-1] ^= 1
	bad, err := cbor.Marshal(tampered)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rp.FinishRegistration(u, reg, credID, att.Format, att.AuthData, bad); err == nil {
		t.Fatal("go-webauthn accepted a tpm statement with a tampered certInfo")
	}

	cred, err := rp.FinishRegistration(u, reg, credID, att.Format, att.AuthData, att.AttStmt)
	if err != nil {
		t.Fatalf("go-webauthn rejected the tpm attestation: %v", err)
	}
	if cred.AttestationFormat != "tpm" {
		t.Errorf("go-webauthn saw format %q, want tpm", cred.AttestationFormat)
	}
	if cred.Flags.BackupEligible || cred.Flags.BackupState {
		t.Errorf("credential flags BE=%v BS=%v, want both false", cred.Flags.BackupEligible, cred.Flags.BackupState)
	}

	last := cred.Authenticator.SignCount
	for i := range 2 {
		login, err := rp.BeginLogin(u)
		if err != nil {
			t.Fatal(err)
		}
		req := &ctap2.GetAssertionRequest{RPID: rp.ID, ClientDataHash: login.ClientDataHash}
		for _, id := range login.AllowList {
			req.AllowList = append(req.AllowList, ctap2.CredentialDescriptor{Type: "public-key", ID: id})
		}
		resp, err := c.GetAssertion(ctx, req)
		if err != nil {
			t.Fatalf("getAssertion %d: %v", i, err)
		}
		if flags := resp.AuthData[32]; flags&0x18 != 0 {
			t.Errorf("assertion %d flags %#02x: BE/BS set", i, flags)
		}
		got, err := rp.FinishLogin(u, nil, login, resp.Credential.ID, resp.AuthData, resp.Signature, nil)
		if err != nil {
			t.Fatalf("go-webauthn rejected assertion %d: %v", i, err)
		}
		if got.Authenticator.SignCount <= last {
			t.Errorf("assertion %d: counter %d after %d, want it to increase", i, got.Authenticator.SignCount, last)
		}
		if got.Authenticator.CloneWarning {
			t.Errorf("assertion %d: go-webauthn raised a clone warning", i)
		}
		last = got.Authenticator.SignCount
	}
}

// checkAIKCertificate checks the AIK certificate against WebAuthn section
// 8.3.1 and that it chains to the installation's attestation root.
func checkAIKCertificate(t *testing.T, a *ctap2.Authenticator, tp *tpm.TPM, der []byte) {
	t.Helper()
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("AIK certificate: %v", err)
	}
	if cert.Version != 3 {
		t.Errorf("version %d, want 3", cert.Version)
	}
	if len(cert.Subject.Names) != 0 || cert.Subject.String() != "" {
		t.Errorf("subject %q, want empty", cert.Subject)
	}
	if !cert.BasicConstraintsValid || cert.IsCA {
		t.Errorf("basicConstraints valid=%v CA=%v, want present with CA=false", cert.BasicConstraintsValid, cert.IsCA)
	}
	hasEKU := false
	for _, oid := range cert.UnknownExtKeyUsage {
		hasEKU = hasEKU || oid.Equal(testOIDAIKCert)
	}
	if !hasEKU {
		t.Errorf("extended key usage %v lacks tcg-kp-AIKCertificate", cert.UnknownExtKeyUsage)
	}

	wantMfr, wantModel, wantVer, err := tp.Info()
	if err != nil {
		t.Fatal(err)
	}
	var san *pkix.Extension
	var aaguid []byte
	for i, ext := range cert.Extensions {
		switch {
		case ext.Id.Equal(testOIDSAN):
			san = &cert.Extensions[i]
		case ext.Id.Equal(testOIDAAGUID):
			if _, err := asn1.Unmarshal(ext.Value, &aaguid); err != nil {
				t.Errorf("AAGUID extension: %v", err)
			}
		}
	}
	if !bytes.Equal(aaguid, ctap2.DefaultAAGUID[:]) {
		t.Errorf("AAGUID extension %x, want %x", aaguid, ctap2.DefaultAAGUID)
	}
	if san == nil {
		t.Fatal("no subject alternative name")
	}
	if !san.Critical {
		t.Error("subject alternative name not critical although the subject is empty")
	}
	got := sanTPMAttributes(t, san.Value)
	want := map[string]string{
		testOIDManufacturer.String(): wantMfr,
		testOIDModel.String():        wantModel,
		testOIDVersion.String():      wantVer,
	}
	for oid, v := range want {
		if got[oid] != v || v == "" {
			t.Errorf("SAN attribute %s = %q, want %q (from the TPM)", oid, got[oid], v)
		}
	}

	rootDER, err := a.AttestationRoot()
	if err != nil {
		t.Fatal(err)
	}
	root, err := x509.ParseCertificate(rootDER)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(der, rootDER) {
		t.Fatal("x5c[0] is the root")
	}
	// crypto/x509 refuses a critical SAN it does not understand (one with
	// only a directoryName), as any verifier built on it must work around:
	// go-webauthn drops it from UnhandledCriticalExtensions before
	// verifying the chain, and so does this test. The EKU is checked too.
	leaf := *cert
	leaf.UnhandledCriticalExtensions = nil
	for _, oid := range cert.UnhandledCriticalExtensions {
		if !oid.Equal(testOIDSAN) {
			leaf.UnhandledCriticalExtensions = append(leaf.UnhandledCriticalExtensions, oid)
		}
	}
	roots := x509.NewCertPool()
	roots.AddCert(root)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Errorf("AIK certificate does not chain to the attestation root: %v", err)
	}
	// And it must not chain to some other root.
	other := x509.NewCertPool()
	other.AddCert(foreignRoot(t))
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: other, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err == nil {
		t.Error("AIK certificate verified against an unrelated root")
	}
}

// foreignRoot is the attestation root of another installation.
func foreignRoot(t *testing.T) *x509.Certificate {
	t.Helper()
	a, err := ctap2.New(ctap2.Options{Store: keystore.NewMemory(0)})
	if err != nil {
		t.Fatal(err)
	}
	der, err := a.AttestationRoot()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// sanTPMAttributes decodes a SubjectAltName holding directoryNames and
// returns their attributes by OID.
func sanTPMAttributes(t *testing.T, value []byte) map[string]string {
	t.Helper()
	var names []asn1.RawValue
	if rest, err := asn1.Unmarshal(value, &names); err != nil || len(rest) != 0 {
		t.Fatalf("SAN: %v (%d trailing bytes)", err, len(rest))
	}
	out := map[string]string{}
	for _, n := range names {
		if n.Class != asn1.ClassContextSpecific || n.Tag != 4 {
			t.Errorf("SAN entry with tag %d, want directoryName [4]", n.Tag)
			continue
		}
		var dn pkix.RDNSequence
		if rest, err := asn1.Unmarshal(n.Bytes, &dn); err != nil || len(rest) != 0 {
			t.Fatalf("SAN directoryName: %v", err)
		}
		for _, rdn := range dn {
			for _, atv := range rdn {
				s, ok := atv.Value.(string)
				if !ok {
					t.Errorf("SAN attribute %s is %T, want a string", atv.Type, atv.Value)
				}
				out[atv.Type.String()] = s
			}
		}
	}
	return out
}

// TestTPMCredentialOnAnotherTPM presents a TPM-backed credential to an
// authenticator on another TPM (another swtpm state, so other seeds): it is
// not found (CTAP 2.1 section 6.2.2 step 7), whether or not that
// authenticator can open the credential ID.
func TestTPMCredentialOnAnotherTPM(t *testing.T) {
	ctx := context.Background()
	store := keystore.NewMemory(0)
	tp1 := openTPM(t, swtpmtest.Start(t))
	tp2 := openTPM(t, swtpmtest.Start(t))
	a1 := newTPMAuthenticator(t, tp1, store)
	c1 := client.New(client.Direct{A: a1})

	const rpID = "example.com"
	cdh := client.ClientDataHash([]byte("challenge"))
	att, err := c1.MakeCredential(ctx, &ctap2.MakeCredentialRequest{
		ClientDataHash:   cdh,
		RP:               &ctap2.RPEntity{ID: rpID},
		User:             &ctap2.UserEntity{ID: []byte("user")},
		PubKeyCredParams: es256Params(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	credID, err := att.CredentialID()
	if err != nil {
		t.Fatal(err)
	}
	req := &ctap2.GetAssertionRequest{
		RPID: rpID, ClientDataHash: cdh,
		AllowList: []ctap2.CredentialDescriptor{{Type: "public-key", ID: credID}},
	}
	// The credential works where it was made.
	if _, err := c1.GetAssertion(ctx, req); err != nil {
		t.Fatalf("getAssertion on the credential's own TPM: %v", err)
	}

	for _, tc := range []struct {
		name  string
		store keystore.Store
	}{
		// The state folder (and so the credential ID wrap key) moved to a
		// machine with another TPM: the ID opens, the TPM refuses the key.
		{"same store", store},
		// Another installation altogether: the ID does not even open.
		{"other store", keystore.NewMemory(0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The log tells a panic (which HandleCBOR also answers with
			// CTAP1_ERR_OTHER) from an error.
			var log bytes.Buffer
			a2 := newTPMAuthenticatorLog(t, tp2, tc.store, slog.New(slog.NewTextHandler(&log, nil)))
			_, err := client.New(client.Direct{A: a2}).GetAssertion(ctx, req)
			if strings.Contains(log.String(), "panicked") {
				t.Fatalf("getAssertion with another TPM's credential panicked:\n%s", log.String())
			}
			var st ctap2.Status
			if !errors.As(err, &st) || st != ctap2.ErrNoCredentials {
				t.Errorf("getAssertion with another TPM's credential = %v, want %v", err, ctap2.ErrNoCredentials)
			}
		})
	}
}
