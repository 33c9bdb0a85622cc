package ctap2

import (
	"context"
	"crypto/sha256"
	"testing"

	"github.com/vkey-dev/vkey/internal/benchpair"
	"github.com/vkey-dev/vkey/internal/swtpmtest"
	"github.com/vkey-dev/vkey/keystore"
	"github.com/vkey-dev/vkey/tpm"
)

// BenchmarkTPMGetAssertion measures, on one swtpm, an in-process
// authenticatorGetAssertion with a TPM-backed non-discoverable credential
// (allowList, automatic user presence) against a bare Load+Sign of the same
// key through the tpm package (TPM2_Load, TPM2_Sign, TPM2_FlushContext),
// interleaved op by op so that both see the same machine load. It reports
// getassertion-ns/op, bare-ns/op and their ratio (issue 6 goal: <= 1.10);
// ns/op is the sum of both.
//
// This file is in package ctap2 (not ctap2_test) to open the credential ID
// and take the key blob it seals, which is the only place it lives.
func BenchmarkTPMGetAssertion(b *testing.B) {
	srv := swtpmtest.Start(b)
	tp, err := tpm.Open(srv.Spec())
	if err != nil {
		b.Fatalf("tpm.Open(%s): %v", srv.Spec(), err)
	}
	b.Cleanup(func() { _ = tp.Close() })
	kp := tp.KeyProvider()
	a, err := New(Options{
		Store:       keystore.NewMemory(0),
		DeviceKeys:  kp,
		Presence:    AutoPresence{},
		Attestation: AttestationNone, // registration is not what is measured
		Passkeys:    DeviceBound,
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	const rpID = "example.com"
	cdh := sha256.Sum256([]byte("client data"))

	credID := benchMakeCredential(b, a, rpID, cdh[:])
	cred, err := openCredentialID(a.wrapKey, rpID, credID)
	if err != nil {
		b.Fatal(err)
	}
	if cred.Provider != kp.Name() || cred.Discoverable {
		b.Fatalf("credential from provider %q (discoverable %v), want a non-discoverable %q credential", cred.Provider, cred.Discoverable, kp.Name())
	}
	body, err := Marshal(GetAssertionRequest{
		RPID: rpID, ClientDataHash: cdh[:],
		AllowList: []CredentialDescriptor{{Type: publicKeyType, ID: credID}},
	})
	if err != nil {
		b.Fatal(err)
	}
	msg := append([]byte{CmdGetAssertion}, body...)
	toSign := make([]byte, 37+32) // authenticatorData || clientDataHash, as getAssertion signs

	getAssertion := func() error {
		out := a.HandleCBOR(ctx, msg)
		if st := Status(out[0]); st != StatusOK {
			return st
		}
		return nil
	}
	bare := func() error {
		k, err := kp.Load(keystore.AlgES256, cred.KeyBlob)
		if err != nil {
			return err
		}
		_, err = k.Sign(toSign)
		return err
	}
	// Both paths must work before they are timed.
	if err := getAssertion(); err != nil {
		b.Fatalf("getAssertion: %v", err)
	}
	if err := bare(); err != nil {
		b.Fatalf("bare sign: %v", err)
	}

	benchpair.Compare(b, 1, benchpair.Op{Name: "getassertion", Run: getAssertion}, benchpair.Op{Name: "bare", Run: bare})
}

// benchMakeCredential registers a non-discoverable ES256 credential and
// returns its ID.
func benchMakeCredential(b *testing.B, a *Authenticator, rpID string, cdh []byte) []byte {
	b.Helper()
	alg := CredentialParameter{Type: publicKeyType, Alg: int64(keystore.AlgES256)}
	body, err := Marshal(MakeCredentialRequest{
		ClientDataHash:   cdh,
		RP:               &RPEntity{ID: rpID},
		User:             &UserEntity{ID: []byte("bench user")},
		PubKeyCredParams: []CredentialParameter{alg},
	})
	if err != nil {
		b.Fatal(err)
	}
	out := a.HandleCBOR(context.Background(), append([]byte{CmdMakeCredential}, body...))
	if st := Status(out[0]); st != StatusOK {
		b.Fatalf("makeCredential: %v", st)
	}
	var resp struct {
		AuthData []byte `cbor:"2,keyasint"`
	}
	if err := Unmarshal(out[1:], &resp); err != nil {
		b.Fatalf("makeCredential response: %v", err)
	}
	ad := resp.AuthData
	if len(ad) < 55 || ad[32]&flagAT == 0 {
		b.Fatal("makeCredential: no attested credential data")
	}
	n := int(ad[53])<<8 | int(ad[54])
	if len(ad) < 55+n {
		b.Fatal("makeCredential: truncated credential ID")
	}
	return ad[55 : 55+n]
}
