package client_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/ctap2/client"
	"github.com/vkey-dev/vkey/keystore"
)

// previewOnly makes a key look like a CTAP 2.1-pre key: getInfo says
// credentialMgmtPreview and not credMgmt; it records the command bytes.
type previewOnly struct {
	client.Direct
	cmds []byte
}

func (p *previewOnly) CBOR(ctx context.Context, msg []byte) ([]byte, error) {
	p.cmds = append(p.cmds, msg[0])
	if msg[0] == ctap2.CmdClientPIN {
		var req map[int]any
		if err := ctap2.Unmarshal(msg[1:], &req); err == nil && req[2] == uint64(ctap2.ClientPINGetTokenUsingPIN) {
			// A CTAP 2.1-pre key does not know the subcommand.
			return []byte{byte(ctap2.ErrInvalidSubcommand)}, nil
		}
	}
	out, err := p.Direct.CBOR(ctx, msg)
	if err != nil || msg[0] != ctap2.CmdGetInfo || out[0] != 0 {
		return out, err
	}
	var info map[int]any
	if err := ctap2.Unmarshal(out[1:], &info); err != nil {
		return nil, err
	}
	opts := info[4].(map[any]any)
	delete(opts, "credMgmt")
	opts["credentialMgmtPreview"] = true
	body, err := ctap2.Marshal(info)
	return append([]byte{0}, body...), err
}

func TestPINProtocol(t *testing.T) {
	for _, c := range []struct {
		protos []uint64
		want   uint64
	}{{[]uint64{2, 1}, 2}, {[]uint64{1, 2}, 1}, {[]uint64{3, 2}, 2}, {nil, 1}} {
		if got := client.PINProtocol(&ctap2.GetInfoResponse{PinUvAuthProtocols: c.protos}); got != c.want {
			t.Errorf("PINProtocol(%v) = %d, want %d", c.protos, got, c.want)
		}
	}
}

// TestSessionRules: no token without a PIN (ErrNoPIN); credential
// management falls back to the preview command 0x41 on a key that has
// only it; a credential's largeBlobKey is found through it.
func TestSessionRules(t *testing.T) {
	ctx := context.Background()
	a, err := ctap2.New(ctap2.Options{Store: keystore.NewMemory(0), Presence: ctap2.AutoPresence{}})
	if err != nil {
		t.Fatal(err)
	}
	pin := func(context.Context) (string, error) { return "1234", nil }
	s, err := client.NewSession(ctx, client.Direct{A: a}, pin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Token(ctx, ctap2.PermCredentialMgmt, ""); !errors.Is(err, client.ErrNoPIN) {
		t.Fatalf("Token without a PIN: %v, want ErrNoPIN", err)
	}
	if tok, err := s.OptionalToken(ctx, ctap2.PermAuthenticatorCfg); tok != nil || err != nil {
		t.Fatalf("OptionalToken without a PIN: %v, %v; want none", tok, err)
	}
	if err := s.SetPIN(ctx, s.Protocol(), "1234"); err != nil {
		t.Fatal(err)
	}

	var ids [][]byte
	for i, withKey := range []bool{true, false} {
		tok, err := client.New(client.Direct{A: a}).PINToken(ctx, 2, "1234", ctap2.PermMakeCredential, "example.com")
		if err != nil {
			t.Fatal(err)
		}
		req := &ctap2.MakeCredentialRequest{ClientDataHash: make([]byte, 32), RP: &ctap2.RPEntity{ID: "example.com"},
			User: &ctap2.UserEntity{ID: []byte{byte(i)}, Name: "alice"}, PubKeyCredParams: []ctap2.CredentialParameter{{Type: "public-key", Alg: -7}},
			Options: map[string]bool{"rk": true}}
		if withKey {
			req.Extensions = ctap2.MakeCredentialExtensions{LargeBlobKey: true}
		}
		req.PinUvAuthParam, req.PinUvAuthProtocol = tok.Param(req.ClientDataHash), tok.Version()
		att, err := client.New(client.Direct{A: a}).MakeCredential(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		id, _ := att.CredentialID()
		ids = append(ids, id)
	}

	tr := &previewOnly{Direct: client.Direct{A: a}}
	s, err = client.NewSession(ctx, tr, pin)
	if err != nil {
		t.Fatal(err)
	}
	key, tok, err := s.LargeBlobKey(ctx, ids[0], ctap2.PermLargeBlobWrite)
	if err != nil || len(key) != 32 || tok == nil {
		t.Fatalf("LargeBlobKey: %x, %v, %v", key, tok, err)
	}
	if !bytes.Contains(tr.cmds, []byte{ctap2.CmdCredentialMgmtPreview}) || bytes.Contains(tr.cmds, []byte{ctap2.CmdCredentialManagement}) {
		t.Errorf("commands %x: want the preview credential management command only", tr.cmds)
	}
	if _, _, err := s.LargeBlobKey(ctx, ids[1], 0); !errors.Is(err, client.ErrNoLargeBlobKey) {
		t.Errorf("LargeBlobKey of a credential without one: %v", err)
	}
	if _, _, err := s.LargeBlobKey(ctx, []byte("nope"), 0); !errors.Is(err, client.ErrNoCredential) {
		t.Errorf("LargeBlobKey of an unknown credential: %v", err)
	}
}
