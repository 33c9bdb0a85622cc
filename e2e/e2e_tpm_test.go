package e2e

import (
	"context"
	"encoding/base64"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/internal/clientsummary"
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

// TestE2ETPMRSAFido2Tools (issue 13): with `vkey run --keys tpm` on a TPM
// with RSA-2048 (swtpm), libfido2's fido2-cred makes rs256 credentials,
// discoverable or not, whose packed attestation fido2-cred -V verifies,
// and fido2-assert verifies their assertions, also after a restart (the
// store keeps the TPM's wrapped key; the ID, within maxCredentialIdLength,
// only names it). The attestation is packed because libfido2 1.12
// verifies only Windows Hello's tpm statements (an RSA-SHA1 AIK and a
// 32-byte authPolicy in pubArea, src/tpm.c); go-webauthn checks vkey's
// (TestTPMRSAWebAuthn).
func TestE2ETPMRSAFido2Tools(t *testing.T) {
	clientsummary.Record(t, "libfido2 tools, pty, TPM keys (swtpm)", "fido2-cred -M/-V and fido2-assert with rs256 keys in the TPM, discoverable or not, across a restart")
	swtpmtest.Need(t)
	needTool(t, "fido2-cred", "fido2-assert")
	tpm := swtpmtest.Start(t)
	args := []string{"--state", filepath.Join(t.TempDir(), "state"), "--keys", "tpm", "--tpm", tpm.Spec(),
		"--attestation", "packed", "--transport", "pty", "--presence", "auto"}
	k := startKey(t, args...)
	id, pub := fido2Register(t, k.Where, "example.com", "rs256")
	raw, err := base64.StdEncoding.DecodeString(id)
	if err != nil || len(raw) > 100 {
		// A software RS256 ID carries the key's primes (288 bytes or more).
		t.Fatalf("credential ID %q (%v): want the short ID of a key the store keeps", id, err)
	}
	t.Logf("rs256 TPM credential ID: %d bytes", len(raw))
	fido2Assert(t, k.Where, "example.com", id, pub, "rs256")
	_, rpub := fido2Register(t, k.Where, "resident.example", "rs256", "-r")
	fido2Assert(t, k.Where, "resident.example", "", rpub, "rs256", "-r")
	stopKey(t, k)

	k = startKey(t, args...)
	fido2Assert(t, k.Where, "example.com", id, pub, "rs256")
	fido2Assert(t, k.Where, "resident.example", "", rpub, "rs256", "-r")
}

// TestE2ETPMU2F: with `vkey run --keys tpm` on swtpm, U2F registrations
// are TPM keys the state keeps behind a short key handle (at most 255
// bytes, FIDO U2F raw message formats section 4.3; 32 here, where a
// handle carrying the TPM's wrapped key would take about 290).
// libfido2's tools in U2F mode (fido2-cred -M -u, verified by fido2-cred
// -V; fido2-assert -G -u, verified by fido2-assert -V) over the pty, and
// python-fido2 0.9.1's Ctap1 over UDP (RegistrationData.verify,
// SignatureData.verify, check-only, dont-enforce; testdata/python/
// u2f_tpm_udp.py) register and authenticate, also after a restart, with a
// counter that keeps growing.
func TestE2ETPMU2F(t *testing.T) {
	clientsummary.Record(t, "libfido2 tools -u (pty) and python3-fido2 Ctap1 (UDP), TPM keys (swtpm)",
		"U2F register and authenticate with P-256 keys in the TPM, verified by each client, across a restart")
	swtpmtest.Need(t)
	needTool(t, "fido2-cred", "fido2-assert", "/usr/bin/python3")
	tpm := swtpmtest.Start(t)
	state := filepath.Join(t.TempDir(), "state")
	common := []string{"--state", state, "--keys", "tpm", "--tpm", tpm.Spec(), "--presence", "auto"}
	pty := append([]string{"--transport", "pty"}, common...)
	udp := append([]string{"--transport", "udp", "--udp-addr", "127.0.0.1:0"}, common...)

	k := startKey(t, pty...)
	id, pub := fido2Register(t, k.Where, "example.com", "es256", "-u")
	raw, err := base64.StdEncoding.DecodeString(id)
	if err != nil || len(raw) > 255 {
		t.Fatalf("U2F key handle %q (%v): want at most 255 bytes", id, err)
	}
	t.Logf("fido2-cred -M -u: %d-byte key handle", len(raw))
	fido2Assert(t, k.Where, "example.com", id, pub, "es256", "-u")
	stopKey(t, k)

	handles := filepath.Join(t.TempDir(), "handles")
	k = startKey(t, udp...)
	runPython(t, k, "u2f_tpm_udp.py", []string{"VKEY_U2F_HANDLES=" + handles})
	stopKey(t, k)

	k = startKey(t, udp...)
	runPython(t, k, "u2f_tpm_udp.py", []string{"VKEY_U2F_CHECK=" + handles})
	stopKey(t, k)
	k = startKey(t, pty...)
	fido2Assert(t, k.Where, "example.com", id, pub, "es256", "-u")
}
