package ctap2_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"testing"

	"github.com/vkey-dev/vkey/ctap2"
)

// longRPID is a valid 253-byte RP ID, the longest a domain name can be.
func longRPID() string {
	label := strings.Repeat("a", 62)
	id := strings.Join([]string{label, label, label, label}, ".") // 251
	return id + ".x"                                              // 253
}

// fullDescriptors is n descriptors of random IDs of length size, each
// naming every transport WebAuthn defines, followed by the given real IDs.
func fullDescriptors(t *testing.T, n, size int, real ...[]byte) []ctap2.CredentialDescriptor {
	t.Helper()
	var out []ctap2.CredentialDescriptor
	transports := []string{"usb", "nfc", "ble", "hybrid", "internal"}
	for range n - len(real) {
		id := make([]byte, size)
		_, _ = rand.Read(id)
		out = append(out, ctap2.CredentialDescriptor{Type: "public-key", ID: id, Transports: transports})
	}
	for _, id := range real {
		out = append(out, ctap2.CredentialDescriptor{Type: "public-key", ID: id, Transports: transports})
	}
	return out
}

// TestEveryLimitAtOnce (issue 16 point 6): a makeCredential and a
// getAssertion that use every limit getInfo states at once, a full list of
// the longest credential IDs with a 253-byte RP ID, the longest user
// entity and every extension, fit maxMsgSize and succeed; software
// ES256 credential IDs are at most 128 bytes, and RS256 ones (the longest,
// issue 13) within maxCredentialIdLength, so the list limits hold for them.
func TestEveryLimitAtOnce(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		proto uint64
		alg   int64
	}{{1, -7}, {2, -7}, {2, -257}} {
		proto := tc.proto
		t.Run(fmt.Sprintf("protocol%d/alg%d", proto, tc.alg), func(t *testing.T) {
			k := pinKey(t)
			tok, _ := k.c.PINToken(ctx, proto, flowPIN, ctap2.PermAuthenticatorCfg, "")
			wantStatus(t, k.c.EnableEnterpriseAttestation(ctx, tok), ctap2.StatusOK)
			info, err := k.c.GetInfo(ctx)
			if err != nil {
				t.Fatal(err)
			}
			maxMsg, count, idLen := int(info.MaxMsgSize), int(info.MaxCredentialCountInList), int(info.MaxCredentialIDLength)
			if count < 8 || idLen < 128 {
				t.Errorf("maxCredentialCountInList %d, maxCredentialIdLength %d: want at least 8 and 128", count, idLen)
			}
			rpID := longRPID()
			name := strings.Repeat("n", 64)
			ep := uint64(2)
			tok, _ = k.c.PINToken(ctx, proto, flowPIN, ctap2.PermMakeCredential|ctap2.PermGetAssertion, rpID)
			mc := &ctap2.MakeCredentialRequest{
				ClientDataHash:   bytes.Repeat([]byte{1}, 32),
				RP:               &ctap2.RPEntity{ID: rpID, Name: name},
				User:             &ctap2.UserEntity{ID: bytes.Repeat([]byte{2}, 64), Name: name, DisplayName: name},
				PubKeyCredParams: credParams(t, tc.alg, -8, -19),
				ExcludeList:      fullDescriptors(t, count, idLen),
				Extensions: ctap2.MakeCredentialExtensions{
					CredProtect: 2, HMACSecret: true, CredBlob: bytes.Repeat([]byte{3}, 32), LargeBlobKey: true, MinPINLength: true,
				},
				Options:               map[string]bool{"rk": true, "up": true, "uv": false},
				EnterpriseAttestation: &ep,
			}
			mc.PinUvAuthParam, mc.PinUvAuthProtocol = withToken(tok, mc.ClientDataHash)
			checkSize(t, "makeCredential", mustCBOR(t, mc), len(mc.ExcludeList), maxMsg)
			att, err := k.c.MakeCredential(ctx, mc)
			if err != nil {
				t.Fatalf("makeCredential at every limit: %v", err)
			}
			id, _ := att.CredentialID()
			if (tc.alg == -7 && len(id) > 128) || len(id) > idLen {
				t.Errorf("software credential ID of %d bytes, want at most 128 for ES256 and %d for any", len(id), idLen)
			}

			hs, err := k.c.NewHMACSecret(ctx, proto, bytes.Repeat([]byte{4}, 32), bytes.Repeat([]byte{5}, 32))
			if err != nil {
				t.Fatal(err)
			}
			ga := &ctap2.GetAssertionRequest{
				RPID: rpID, ClientDataHash: bytes.Repeat([]byte{6}, 32),
				AllowList:  fullDescriptors(t, count, idLen, id),
				Extensions: ctap2.GetAssertionExtensions{HMACSecret: hs.Input, CredBlob: true, LargeBlobKey: true},
				Options:    map[string]bool{"up": true, "uv": false},
			}
			tok, _ = k.c.PINToken(ctx, proto, flowPIN, ctap2.PermGetAssertion, rpID) // the last one was used up
			ga.PinUvAuthParam, ga.PinUvAuthProtocol = withToken(tok, ga.ClientDataHash)
			checkSize(t, "getAssertion", mustCBOR(t, ga), len(ga.AllowList), maxMsg)
			resp, err := k.c.GetAssertion(ctx, ga)
			if err != nil {
				t.Fatalf("getAssertion at every limit: %v", err)
			}
			if !bytes.Equal(resp.Credential.ID, id) || resp.LargeBlobKey == nil {
				t.Errorf("assertion by %x, want %x with its largeBlobKey", resp.Credential.ID, id)
			}
		})
	}
}

// checkSize fails when a request of n descriptors does not fit maxMsg
// (with its command byte).
func checkSize(t *testing.T, what string, req []byte, n, maxMsg int) {
	t.Helper()
	if 1+len(req) > maxMsg {
		t.Fatalf("%s with %d descriptors is %d bytes, more than maxMsgSize %d", what, n, 1+len(req), maxMsg)
	}
	t.Logf("%s with every limit: %d of %d bytes", what, 1+len(req), maxMsg)
}
