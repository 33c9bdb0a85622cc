package e2e

import (
	"context"
	"os/exec"
	"testing"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/internal/keyproc"
	"github.com/vkey-dev/vkey/internal/webauthntest"
)

// TestE2EBuiltInUV: `vkey run --uv builtin` has a user verification method
// whose outcome `vkey uv` sets; go-webauthn sees the UV flag when the
// relying party requires user verification.
func TestE2EBuiltInUV(t *testing.T) {
	k := startKey(t, "--ephemeral", "--transport", "udp", "--udp-addr", "127.0.0.1:0", "--presence", "auto", "--uv", "builtin")
	c := dial(t, k.Where)
	ctx := context.Background()
	vkeyUV := func(arg string) {
		t.Helper()
		cmd := exec.Command(keyproc.Binary(t), "uv", arg)
		cmd.Env = k.Env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("vkey uv %s: %v\n%s", arg, err, out)
		}
	}
	info, err := c.GetInfo(ctx)
	if err != nil || !info.Options["uv"] {
		t.Fatalf("getInfo uv option: %v %v", info.Options, err)
	}
	rp, _ := webauthntest.New("example.com")
	u := webauthntest.NewUser("alice")
	cer, err := rp.BeginRegistration(u, webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{UserVerification: protocol.VerificationRequired}))
	if err != nil {
		t.Fatal(err)
	}
	req := &ctap2.MakeCredentialRequest{ClientDataHash: cer.ClientDataHash, RP: &ctap2.RPEntity{ID: "example.com"},
		User: &ctap2.UserEntity{ID: u.ID, Name: u.Name}, PubKeyCredParams: esParams(t), Options: map[string]bool{"rk": true, "uv": true}}
	att, err := c.MakeCredential(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := att.CredentialID()
	cred, err := rp.FinishRegistration(u, cer, id, att.Format, att.AuthData, att.AttStmt)
	if err != nil {
		t.Fatalf("go-webauthn (UV required): %v", err)
	}
	if !cred.Flags.UserVerified {
		t.Error("UV flag not set")
	}
	vkeyUV("not-verified")
	ga := &ctap2.GetAssertionRequest{RPID: "example.com", ClientDataHash: make([]byte, 32), Options: map[string]bool{"uv": true}}
	_, err = c.GetAssertion(ctx, ga)
	if st, ok := err.(ctap2.Status); !ok || st != ctap2.ErrUVInvalid {
		t.Fatalf("with UV failing: %v, want CTAP2_ERR_UV_INVALID", err)
	}
	vkeyUV("verified")
	lc, _ := rp.BeginLogin(u, webauthn.WithUserVerification(protocol.VerificationRequired))
	ga.ClientDataHash = lc.ClientDataHash
	resp, err := c.GetAssertion(ctx, ga)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rp.FinishLogin(u, nil, lc, resp.Credential.ID, resp.AuthData, resp.Signature, resp.User.ID); err != nil {
		t.Fatalf("go-webauthn rejected the UV assertion: %v", err)
	}
}
