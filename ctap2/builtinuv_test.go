package ctap2_test

import (
	"context"
	"testing"

	"github.com/vkey-dev/vkey/ctap2"
)

type switchUV struct{ ok bool }

func (s *switchUV) VerifyUser(ctx context.Context, _ ctap2.PresenceRequest) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.ok {
		return nil
	}
	return ctap2.ErrUVFailed
}

// TestBuiltInUV: the uv option with a built-in method, its failures and
// retries, and getPinUvAuthTokenUsingUvWithPermissions.
func TestBuiltInUV(t *testing.T) {
	ctx := context.Background()
	uv := &switchUV{ok: true}
	k := newKey(t, func(o *ctap2.Options) { o.UserVerifier = uv })
	info, _ := k.c.GetInfo(ctx)
	if !info.Options["uv"] || !info.Options["uvToken"] {
		t.Errorf("getInfo options %v: want uv and uvToken", info.Options)
	}
	req := mcRequest(t, "example.com", []byte{1}, true)
	req.Options["uv"] = true
	att, err := k.c.MakeCredential(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if att.AuthData[32]&0x04 == 0 {
		t.Error("UV flag missing after built-in verification")
	}
	ga := &ctap2.GetAssertionRequest{RPID: "example.com", ClientDataHash: make([]byte, 32), Options: map[string]bool{"uv": true}}
	resp, err := k.c.GetAssertion(ctx, ga)
	if err != nil || resp.AuthData[32]&0x04 == 0 || resp.User == nil || len(resp.User.ID) == 0 {
		t.Fatalf("assertion with built-in UV: %v (flags %x)", err, resp.AuthData[32])
	}
	tok, err := k.c.UVToken(ctx, 2, ctap2.PermMakeCredential, "example.com")
	if err != nil {
		t.Fatal(err)
	}
	req = mcRequest(t, "example.com", []byte{2}, true)
	req.PinUvAuthParam, req.PinUvAuthProtocol = tok.Param(req.ClientDataHash), tok.Version()
	if _, err := k.c.MakeCredential(ctx, req); err != nil {
		t.Errorf("makeCredential with a token from built-in UV: %v", err)
	}
	uv.ok = false
	_, err = k.c.UVToken(ctx, 2, ctap2.PermMakeCredential, "example.com")
	wantStatus(t, err, ctap2.ErrUVInvalid)
	for i := 0; i < 6; i++ {
		_, err = k.c.GetAssertion(ctx, ga)
		wantStatus(t, err, ctap2.ErrUVInvalid)
	}
	var retries struct {
		UVRetries int `cbor:"5,keyasint"`
	}
	if err := k.c.Call(ctx, ctap2.CmdClientPIN, map[int]any{1: 2, 2: 7}, &retries); err != nil || retries.UVRetries != 1 {
		t.Errorf("getUVRetries = %d (%v), want 1", retries.UVRetries, err)
	}
	_, err = k.c.GetAssertion(ctx, ga)
	wantStatus(t, err, ctap2.ErrUVBlocked)
	uv.ok = true
	_, err = k.c.GetAssertion(ctx, ga)
	wantStatus(t, err, ctap2.ErrUVBlocked)
	k.a.PowerCycle()
	if _, err := k.c.GetAssertion(ctx, ga); err != nil {
		t.Errorf("after a power cycle: %v", err)
	}
	// Without a built-in method the uv option is CTAP2_ERR_INVALID_OPTION.
	plain := newKey(t)
	_, err = plain.c.GetAssertion(ctx, ga)
	wantStatus(t, err, ctap2.ErrInvalidOption)
	var none struct{}
	wantStatus(t, plain.c.Call(ctx, ctap2.CmdClientPIN, map[int]any{1: 2, 2: 7}, &none), ctap2.ErrInvalidSubcommand)
}
