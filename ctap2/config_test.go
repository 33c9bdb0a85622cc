package ctap2_test

import (
	"context"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/vkey-dev/vkey/ctap2"
)

// TestConfigAndForcedPINChange: authenticatorConfig (CTAP 2.1 section 6.11)
// needs an acfg token once a PIN is set; setMinPINLength with
// forceChangePin blocks tokens until the PIN changes; the minPinLength
// extension reports the length to listed RPs; enterprise attestation once
// enabled.
func TestConfigAndForcedPINChange(t *testing.T) {
	ctx := context.Background()
	k := newKey(t)
	wantStatus(t, k.c.SetPIN(ctx, 2, "1234"), ctap2.StatusOK)
	wantStatus(t, k.c.SetMinPINLength(ctx, nil, 6, nil, false), ctap2.ErrPUATRequired)
	tok, err := k.c.PINToken(ctx, 2, "1234", ctap2.PermGetAssertion, "")
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, k.c.SetMinPINLength(ctx, tok, 6, nil, false), ctap2.ErrPINAuthInvalid)
	tok, _ = k.c.PINToken(ctx, 2, "1234", ctap2.PermAuthenticatorCfg, "")
	wantStatus(t, k.c.SetMinPINLength(ctx, tok, 6, []string{"example.com"}, false), ctap2.StatusOK)
	info, _ := k.c.GetInfo(ctx)
	if info.MinPINLength != 6 || !info.ForcePINChange {
		t.Fatalf("minPINLength %d forcePINChange %v: a 4-digit PIN must now be changed", info.MinPINLength, info.ForcePINChange)
	}
	_, err = k.c.PINToken(ctx, 2, "1234", ctap2.PermGetAssertion, "")
	wantStatus(t, err, ctap2.ErrPINPolicyViolation)
	wantStatus(t, k.c.ChangePIN(ctx, 2, "1234", "12345"), ctap2.ErrPINPolicyViolation)
	wantStatus(t, k.c.ChangePIN(ctx, 2, "1234", "123456"), ctap2.StatusOK)
	tok, err = k.c.PINToken(ctx, 2, "123456", ctap2.PermAuthenticatorCfg|ctap2.PermMakeCredential, "")
	if err != nil {
		t.Fatalf("after the change: %v", err)
	}
	wantStatus(t, k.c.SetMinPINLength(ctx, tok, 5, nil, false), ctap2.ErrPINPolicyViolation)

	// minPinLength extension, for a listed RP only.
	for rp, want := range map[string]bool{"example.com": true, "other.example": false} {
		req := mcRequest(t, rp, []byte{1}, false)
		req.Extensions = ctap2.MakeCredentialExtensions{MinPINLength: true}
		att, err := k.c.MakeCredential(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		id, _ := att.CredentialID()
		rest := att.AuthData[55+len(id):]
		var key cbor.RawMessage
		dec := cbor.NewDecoder(bytesReader(rest))
		_ = dec.Decode(&key)
		var ext map[string]any
		_ = dec.Decode(&ext)
		if _, got := ext["minPinLength"]; got != want {
			t.Errorf("%s: minPinLength output %v, want present=%v", rp, ext, want)
		}
	}

	// Enterprise attestation.
	tok, _ = k.c.PINToken(ctx, 2, "123456", ctap2.PermAuthenticatorCfg, "")
	wantStatus(t, k.c.EnableEnterpriseAttestation(ctx, tok), ctap2.StatusOK)
	ep := uint64(2) // platform-managed: for any RP (TestEnterpriseAttestation has the rest)
	req := mcRequest(t, "example.com", []byte{2}, false)
	req.EnterpriseAttestation = &ep
	att, err := k.c.MakeCredential(ctx, req)
	if err != nil || !att.EPAtt {
		t.Errorf("enterprise attestation: epAtt=%v err=%v", att != nil && att.EPAtt, err)
	}
	bad := uint64(3)
	req.EnterpriseAttestation = &bad
	_, err = k.c.MakeCredential(ctx, req)
	wantStatus(t, err, ctap2.ErrInvalidOption)
}

// TestEd25519Identifier: the fully specified Ed25519 COSE algorithm (-19)
// is accepted and recorded in the credential's COSE key.
func TestEd25519Identifier(t *testing.T) {
	k := newKey(t)
	att, err := k.c.MakeCredential(context.Background(), mcRequest(t, "example.com", []byte{1}, false, -19))
	if err != nil {
		t.Fatal(err)
	}
	id, _ := att.CredentialID()
	var key map[int]any
	if err := cbor.NewDecoder(bytesReader(att.AuthData[55+len(id):])).Decode(&key); err != nil {
		t.Fatal(err)
	}
	if key[3] != int64(-19) || key[1] != uint64(1) || key[-1] != uint64(6) {
		t.Errorf("COSE key %v, want kty OKP, alg -19, crv Ed25519", key)
	}
}
