package e2e

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/internal/swtpmtest"
	"github.com/vkey-dev/vkey/internal/webauthntest"
)

// TestE2ETPMKeysAndSealedState: `vkey run --keys tpm --tpm swtpm:SOCKET
// --attestation tpm` on a persistent state: the master key is sealed to
// the TPM, credentials are TPM keys with tpm attestation that go-webauthn
// verifies, and they still work after a restart on the same TPM.
func TestE2ETPMKeysAndSealedState(t *testing.T) {
	swtpmtest.Need(t)
	tpm := swtpmtest.Start(t)
	state := filepath.Join(t.TempDir(), "state")
	args := []string{"--state", state, "--keys", "tpm", "--tpm", tpm.Spec(), "--attestation", "tpm",
		"--transport", "udp", "--udp-addr", "127.0.0.1:0", "--presence", "auto"}
	k := startKey(t, args...)
	if !strings.Contains(k.Output.String(), "master key from the key sealed by the TPM") {
		t.Errorf("vkey run should say the state is sealed by the TPM:\n%s", k.Output.String())
	}
	c := dial(t, k.Where)
	ctx := context.Background()
	rp, _ := webauthntest.New("example.com")
	u := webauthntest.NewUser("alice")
	cer, err := rp.BeginRegistration(u)
	if err != nil {
		t.Fatal(err)
	}
	att, err := c.MakeCredential(ctx, &ctap2.MakeCredentialRequest{ClientDataHash: cer.ClientDataHash,
		RP: &ctap2.RPEntity{ID: "example.com"}, User: &ctap2.UserEntity{ID: u.ID, Name: u.Name}, PubKeyCredParams: esParams(t)})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := att.CredentialID()
	cred, err := rp.FinishRegistration(u, cer, id, att.Format, att.AuthData, att.AttStmt)
	if err != nil {
		t.Fatalf("go-webauthn rejected the TPM attestation: %v", err)
	}
	if cred.AttestationFormat != "tpm" || cred.Flags.BackupEligible {
		t.Errorf("format %q, flags %+v: want tpm, device-bound", cred.AttestationFormat, cred.Flags)
	}
	stopKey(t, k)

	k = startKey(t, args...)
	c = dial(t, k.Where)
	lc, _ := rp.BeginLogin(u)
	resp, err := c.GetAssertion(ctx, &ctap2.GetAssertionRequest{RPID: "example.com", ClientDataHash: lc.ClientDataHash,
		AllowList: []ctap2.CredentialDescriptor{{Type: "public-key", ID: id}}})
	if err != nil {
		t.Fatalf("after a restart: %v", err)
	}
	if _, err := rp.FinishLogin(u, nil, lc, resp.Credential.ID, resp.AuthData, resp.Signature, nil); err != nil {
		t.Fatalf("go-webauthn rejected the TPM-backed assertion: %v", err)
	}
}
