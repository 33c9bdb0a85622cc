package vkeytest_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"testing"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/internal/webauthntest"
	"github.com/vkey-dev/vkey/vkeytest"
)

// TestControls: the credentials a test sees and changes are the key's, and
// a power cycle keeps them.
func TestControls(t *testing.T) {
	kit := vkeytest.New(t)
	rp := newRP(t)
	u := webauthntest.NewUser("alice")
	cred, err := register(t, kit, rp, u, registration{residentKey: protocol.ResidentKeyRequirementRequired})
	if err != nil {
		t.Fatal(err)
	}
	creds, err := kit.Credentials()
	if err != nil || len(creds) != 1 || !bytes.Equal(creds[0].ID, cred.ID) || creds[0].RPID != "example.com" {
		t.Fatalf("credentials %+v, %v", creds, err)
	}
	if err := kit.SetSignCount(cred.ID, 1000); err != nil {
		t.Fatal(err)
	}
	kit.PowerCycle()
	got, err := login(t, kit, rp, u, nil, protocol.VerificationDiscouraged)
	if err != nil {
		t.Fatal(err)
	}
	if got.Authenticator.SignCount <= 1000 {
		t.Errorf("counter %d after SetSignCount(1000)", got.Authenticator.SignCount)
	}
	if err := kit.RemoveCredential(cred.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := login(t, kit, rp, u, nil, protocol.VerificationDiscouraged); err == nil {
		t.Fatal("a removed credential still signs")
	}
}

// TestSyncable: Options.Syncable makes backup-eligible passkeys (BE; BS
// is the key's to set once a passkey is backed up).
func TestSyncable(t *testing.T) {
	kit := vkeytest.New(t, vkeytest.Options{Syncable: true})
	cred, err := register(t, kit, newRP(t), webauthntest.NewUser("alice"), registration{})
	if err != nil {
		t.Fatal(err)
	}
	if !cred.Flags.BackupEligible {
		t.Fatalf("flags %+v: want BE on a syncable passkey", cred.Flags)
	}
	if device, err := register(t, vkeytest.New(t), newRP(t), webauthntest.NewUser("bob"), registration{}); err != nil || device.Flags.BackupEligible {
		t.Fatalf("device-bound passkey: %v, flags %+v: want no BE", err, device.Flags)
	}
}

// TestAddedCredentialSignsIn: a credential a test puts on the key (the
// WebDriver "Add Credential" command) signs in at the relying party that
// holds its public key.
func TestAddedCredentialSignsIn(t *testing.T) {
	kit := vkeytest.New(t)
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	u := webauthntest.NewUser("alice")
	id, err := kit.AddCredential(ctap2.VirtualCredential{RPID: "example.com", UserHandle: u.ID, Discoverable: true, PrivateKey: pkcs8, SignCount: 7})
	if err != nil {
		t.Fatal(err)
	}
	added, err := kit.Authenticator().VirtualCredential(id)
	if err != nil {
		t.Fatal(err)
	}
	u.Credentials = append(u.Credentials, webauthn.Credential{ID: id, PublicKey: added.PublicKey, Authenticator: webauthn.Authenticator{SignCount: 7}})
	got, err := login(t, kit, newRP(t), nil, []*webauthntest.User{u}, protocol.VerificationDiscouraged)
	if err != nil {
		t.Fatal(err)
	}
	if got.Authenticator.SignCount <= 7 {
		t.Errorf("counter %d after 7", got.Authenticator.SignCount)
	}
}
