package vkeytest_test

import (
	"testing"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/internal/swtpmtest"
	"github.com/vkey-dev/vkey/internal/webauthntest"
	"github.com/vkey-dev/vkey/tpm"
	"github.com/vkey-dev/vkey/vkeytest"
)

// TestGoWebAuthnAcceptsTPM: with a software TPM (swtpm) for its keys, the
// kit's registrations carry tpm attestation that go-webauthn verifies, and
// its sign-ins are accepted.
func TestGoWebAuthnAcceptsTPM(t *testing.T) {
	srv := swtpmtest.Start(t)
	tp, err := tpm.Open(srv.Spec())
	if err != nil {
		t.Fatalf("tpm.Open(%s): %v", srv.Spec(), err)
	}
	t.Cleanup(func() { _ = tp.Close() })
	for _, pin := range []string{"", "4321"} {
		kit := vkeytest.New(t, vkeytest.Options{Attestation: ctap2.AttestationTPM, DeviceKeys: tp.KeyProvider(), PIN: pin})
		rp := newRP(t)
		u := webauthntest.NewUser("alice")
		r := registration{conveyance: protocol.PreferDirectAttestation, residentKey: protocol.ResidentKeyRequirementDiscouraged, uv: protocol.VerificationDiscouraged}
		if pin != "" {
			r.uv, r.residentKey = protocol.VerificationRequired, protocol.ResidentKeyRequirementRequired
		}
		cred, err := register(t, kit, rp, u, r)
		if err != nil {
			t.Fatal(err)
		}
		if cred.AttestationFormat != "tpm" {
			t.Fatalf("attestation format %q, want tpm", cred.AttestationFormat)
		}
		var users []*webauthntest.User
		login1 := u
		if pin != "" {
			login1, users = nil, []*webauthntest.User{u}
		}
		if _, err := login(t, kit, rp, login1, users, r.uv); err != nil {
			t.Fatal(err)
		}
	}
}
