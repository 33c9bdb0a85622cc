package vkeytest_test

import (
	"bytes"
	"testing"

	"github.com/go-webauthn/webauthn/protocol"
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
