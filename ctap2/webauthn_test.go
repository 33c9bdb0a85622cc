package ctap2_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"testing"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/internal/clientsummary"
	"github.com/vkey-dev/vkey/internal/webauthntest"
)

// register runs a registration of u at rp through the authenticator and
// go-webauthn's verification.
func register(t *testing.T, k *testKey, rp *webauthntest.RP, u *webauthntest.User, rk bool, alg int64) *webauthn.Credential {
	t.Helper()
	params := []protocol.CredentialParameter{{Type: "public-key", Algorithm: -7}, {Type: "public-key", Algorithm: -8}}
	if alg != -7 && alg != -8 {
		params = append(params, protocol.CredentialParameter{Type: "public-key", Algorithm: webauthncose.COSEAlgorithmIdentifier(alg)})
	}
	cer, err := rp.BeginRegistration(u, webauthn.WithCredentialParameters(params))
	if err != nil {
		t.Fatal(err)
	}
	req := mcRequest(t, rp.ID, u.ID, rk, alg)
	req.ClientDataHash = cer.ClientDataHash
	req.User.Name = u.Name
	att, err := k.c.MakeCredential(context.Background(), req)
	if err != nil {
		t.Fatalf("makeCredential: %v", err)
	}
	id, err := att.CredentialID()
	if err != nil {
		t.Fatal(err)
	}
	cred, err := rp.FinishRegistration(u, cer, id, att.Format, att.AuthData, att.AttStmt)
	if err != nil {
		t.Fatalf("go-webauthn rejected the registration: %v", err)
	}
	return cred
}

// login runs an authentication and go-webauthn's verification; with a nil u
// it is a discoverable (username-less) login.
func login(t *testing.T, k *testKey, rp *webauthntest.RP, u *webauthntest.User, users []*webauthntest.User) *webauthn.Credential {
	t.Helper()
	cer, err := rp.BeginLogin(u)
	if err != nil {
		t.Fatal(err)
	}
	req := &ctap2.GetAssertionRequest{RPID: rp.ID, ClientDataHash: cer.ClientDataHash}
	for _, id := range cer.AllowList {
		req.AllowList = append(req.AllowList, ctap2.CredentialDescriptor{Type: "public-key", ID: id})
	}
	resp, err := k.c.GetAssertion(context.Background(), req)
	if err != nil {
		t.Fatalf("getAssertion: %v", err)
	}
	var handle []byte
	if resp.User != nil {
		handle = resp.User.ID
	}
	cred, err := rp.FinishLogin(u, users, cer, resp.Credential.ID, resp.AuthData, resp.Signature, handle)
	if err != nil {
		t.Fatalf("go-webauthn rejected the assertion: %v", err)
	}
	return cred
}

// loginTwice signs in twice with u's credential (discoverable: without an
// allow list), checking that the counter grows from last.
func loginTwice(t *testing.T, k *testKey, rp *webauthntest.RP, u *webauthntest.User, rk bool, last uint32) {
	t.Helper()
	for range 2 {
		var got *webauthn.Credential
		if rk {
			got = login(t, k, rp, nil, []*webauthntest.User{u})
		} else {
			got = login(t, k, rp, u, nil)
		}
		if got.Authenticator.SignCount <= last {
			t.Fatalf("counter %d after %d: must increase", got.Authenticator.SignCount, last)
		}
		last = got.Authenticator.SignCount
	}
}

// TestRelyingPartyVerifies has go-webauthn, an independent relying party,
// verify registrations in every attestation format and assertions, for
// every algorithm (ES256, EdDSA, ES384, ES512, RS256, PS256: issue 13),
// discoverable and not.
func TestRelyingPartyVerifies(t *testing.T) {
	clientsummary.Record(t, "go-webauthn (relying party), in-process", "registrations in every attestation format and assertions, ES256, EdDSA, ES384, ES512, RS256, PS256, discoverable or not")
	for _, format := range []ctap2.AttestationFormat{ctap2.AttestationNone, ctap2.AttestationPackedSelf, ctap2.AttestationPacked} {
		for _, alg := range []int64{-7, -8, -35, -36, -257, -37} {
			for _, rk := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/alg%d/rk=%v", format, alg, rk), func(t *testing.T) {
					k := newKey(t, func(o *ctap2.Options) { o.Attestation = format })
					rp, err := webauthntest.New("example.com")
					if err != nil {
						t.Fatal(err)
					}
					u := webauthntest.NewUser("alice")
					cred := register(t, k, rp, u, rk, alg)
					wantFmt := map[ctap2.AttestationFormat]string{ctap2.AttestationNone: "none", ctap2.AttestationPackedSelf: "packed", ctap2.AttestationPacked: "packed"}[format]
					if cred.AttestationFormat != wantFmt {
						t.Errorf("attestation format %q, want %q", cred.AttestationFormat, wantFmt)
					}
					if !cred.Flags.UserPresent || cred.Flags.UserVerified || cred.Flags.BackupEligible || cred.Flags.BackupState {
						t.Errorf("registration flags %+v: want UP only (device-bound, no UV)", cred.Flags)
					}
					if format == ctap2.AttestationPacked {
						checkAttestationChain(t, k, cred)
					}
					loginTwice(t, k, rp, u, rk, cred.Authenticator.SignCount)
				})
			}
		}
	}
}

// attestationX5C is the x5c of the attestation statement go-webauthn kept
// of a registration; it fails the test when there is none.
func attestationX5C(t *testing.T, cred *webauthn.Credential) [][]byte {
	t.Helper()
	if len(cred.Attestation.Object) == 0 {
		t.Fatal("go-webauthn did not keep the attestation object")
	}
	var obj struct {
		AttStmt struct {
			X5C [][]byte `cbor:"x5c"`
		} `cbor:"attStmt"`
	}
	if err := ctap2.Unmarshal(cred.Attestation.Object, &obj); err != nil || len(obj.AttStmt.X5C) == 0 {
		t.Fatalf("no x5c in attestation object: %v", err)
	}
	return obj.AttStmt.X5C
}

// checkAttestationChain verifies the packed x5c leaf against the
// installation's attestation root and the WebAuthn section 8.2.1
// certificate requirements.
func checkAttestationChain(t *testing.T, k *testKey, cred *webauthn.Credential) {
	t.Helper()
	rootDER, err := k.a.AttestationRoot()
	if err != nil {
		t.Fatal(err)
	}
	root, err := x509.ParseCertificate(rootDER)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(attestationX5C(t, cred)[0])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(root)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Fatalf("attestation leaf does not chain to the installation root: %v", err)
	}
	if leaf.IsCA || leaf.Version != 3 || len(leaf.Subject.Country) != 1 || len(leaf.Subject.Organization) != 1 ||
		len(leaf.Subject.OrganizationalUnit) != 1 || leaf.Subject.OrganizationalUnit[0] != "Authenticator Attestation" || leaf.Subject.CommonName == "" {
		t.Errorf("leaf does not meet WebAuthn 8.2.1: %+v", leaf.Subject)
	}
	found := false
	for _, ext := range leaf.Extensions {
		if ext.Id.Equal(asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 45724, 1, 1, 4}) {
			var aaguid []byte
			if _, err := asn1.Unmarshal(ext.Value, &aaguid); err != nil || !bytes.Equal(aaguid, ctap2.DefaultAAGUID[:]) || ext.Critical {
				t.Errorf("AAGUID extension %x critical=%v", aaguid, ext.Critical)
			}
			found = true
		}
	}
	if !found {
		t.Error("leaf has no id-fido-gen-ce-aaguid extension")
	}
}

// TestRelyingPartyVerifiesUVAndExtensions: with a PIN token the UV flag is
// set, and go-webauthn, requiring user verification, accepts the
// registration (with the credProtect and hmac-secret outputs in the
// authenticator data) and the assertion.
func TestRelyingPartyVerifiesUVAndExtensions(t *testing.T) {
	clientsummary.Record(t, "go-webauthn (relying party), in-process", "UV and extensions verified by go-webauthn")
	ctx := context.Background()
	k := newKey(t)
	if err := k.c.SetPIN(ctx, 2, "1234"); err != nil {
		t.Fatal(err)
	}
	rp, _ := webauthntest.New("example.com")
	u := webauthntest.NewUser("alice")
	cer, err := rp.BeginRegistration(u, webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{UserVerification: protocol.VerificationRequired}))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := k.c.PINToken(ctx, 2, "1234", ctap2.PermMakeCredential|ctap2.PermGetAssertion, "example.com")
	if err != nil {
		t.Fatal(err)
	}
	req := mcRequest(t, rp.ID, u.ID, true)
	req.ClientDataHash = cer.ClientDataHash
	req.Extensions = ctap2.MakeCredentialExtensions{CredProtect: 2, HMACSecret: true}
	req.PinUvAuthParam, req.PinUvAuthProtocol = tok.Param(req.ClientDataHash), tok.Version()
	att, err := k.c.MakeCredential(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := att.CredentialID()
	cred, err := rp.FinishRegistration(u, cer, id, att.Format, att.AuthData, att.AttStmt)
	if err != nil {
		t.Fatalf("go-webauthn (UV required): %v", err)
	}
	if !cred.Flags.UserVerified {
		t.Error("UV flag missing")
	}
	lc, err := rp.BeginLogin(u, webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		t.Fatal(err)
	}
	tok, _ = k.c.PINToken(ctx, 1, "1234", ctap2.PermGetAssertion, "example.com")
	ga := &ctap2.GetAssertionRequest{RPID: rp.ID, ClientDataHash: lc.ClientDataHash,
		AllowList: []ctap2.CredentialDescriptor{{Type: "public-key", ID: id}}}
	ga.PinUvAuthParam, ga.PinUvAuthProtocol = tok.Param(ga.ClientDataHash), tok.Version()
	resp, err := k.c.GetAssertion(ctx, ga)
	if err != nil {
		t.Fatal(err)
	}
	got, err := rp.FinishLogin(u, nil, lc, resp.Credential.ID, resp.AuthData, resp.Signature, resp.User.ID)
	if err != nil {
		t.Fatalf("go-webauthn rejected the UV assertion: %v", err)
	}
	if !got.Flags.UserVerified {
		t.Error("assertion UV flag missing")
	}
}
