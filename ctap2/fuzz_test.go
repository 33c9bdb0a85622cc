package ctap2_test

import (
	"context"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/vkey-dev/vkey/ctap2"
)

// FuzzHandleCBOR feeds arbitrary CTAP2 messages (a command byte and its
// CBOR) to one authenticator: no input may panic (which HandleCBOR would
// turn into CTAP1_ERR_OTHER), and every success must carry well-formed
// CBOR. The seed corpus is in testdata/fuzz/FuzzHandleCBOR.
func FuzzHandleCBOR(f *testing.F) {
	k := newKey(f, func(o *ctap2.Options) { o.Presence = ctap2.AutoPresence{} })
	ctx := context.Background()
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		if len(msg) > 0 && msg[0] == ctap2.CmdReset {
			return // a successful reset would only make the rest of the run shallower
		}
		out := k.a.HandleCBOR(ctx, msg)
		if len(out) == 0 {
			t.Fatal("empty response")
		}
		if ctap2.Status(out[0]) == ctap2.ErrOther {
			t.Fatalf("CTAP1_ERR_OTHER (a bug: panic or unmapped error) for %x", msg)
		}
		if out[0] == 0 && len(out) > 1 {
			var v any
			if err := cbor.Unmarshal(out[1:], &v); err != nil {
				t.Fatalf("malformed CBOR response %x: %v", out, err)
			}
		}
	})
}

// fuzzSeeds are valid requests of every command, so the fuzzer starts from
// inputs that reach deep into each one.
func fuzzSeeds(t testing.TB) [][]byte {
	mc := mcRequest(t, "example.com", []byte{1}, true)
	mc.Extensions = ctap2.MakeCredentialExtensions{CredProtect: 2, HMACSecret: true, CredBlob: []byte("x")}
	msg := func(cmd byte, v any) []byte {
		if v == nil {
			return []byte{cmd}
		}
		return append([]byte{cmd}, mustCBOR(t, v)...)
	}
	return [][]byte{
		msg(ctap2.CmdGetInfo, nil),
		msg(ctap2.CmdMakeCredential, mc),
		msg(ctap2.CmdGetAssertion, &ctap2.GetAssertionRequest{RPID: "example.com", ClientDataHash: make([]byte, 32)}),
		msg(ctap2.CmdGetNextAssertion, nil),
		msg(ctap2.CmdClientPIN, map[int]any{1: 2, 2: 1}),
		msg(ctap2.CmdClientPIN, map[int]any{1: 1, 2: 2}),
		msg(ctap2.CmdClientPIN, map[int]any{1: 2, 2: 5, 3: map[int]any{1: 2, 3: -25, -1: 1, -2: make([]byte, 32), -3: make([]byte, 32)}, 6: make([]byte, 32)}),
		msg(ctap2.CmdCredentialManagement, map[int]any{1: 1, 3: 2, 4: make([]byte, 32)}),
		msg(ctap2.CmdCredentialMgmtPreview, map[int]any{1: 4, 2: map[int]any{1: make([]byte, 32)}, 3: 1, 4: make([]byte, 16)}),
		msg(ctap2.CmdLargeBlobs, map[int]any{1: 100, 3: 0}),
		msg(ctap2.CmdLargeBlobs, map[int]any{2: make([]byte, 20), 3: 0, 4: 20}),
		msg(ctap2.CmdConfig, map[int]any{1: 3, 2: map[int]any{1: 6, 2: []string{"example.com"}}}),
		msg(ctap2.CmdConfig, map[int]any{1: 2}),
		msg(ctap2.CmdSelection, nil),
	}
}

// FuzzHandleMSG feeds arbitrary U2F APDUs to the authenticator.
func FuzzHandleMSG(f *testing.F) {
	k := newKey(f, func(o *ctap2.Options) { o.Presence = ctap2.AutoPresence{} })
	f.Add([]byte{0, 3, 0, 0, 0, 0, 0})
	f.Add(append([]byte{0, 1, 0, 0, 0, 0, 64}, make([]byte, 64)...))
	f.Add(append([]byte{0, 2, 7, 0, 0, 0, 66}, make([]byte, 66)...))
	f.Fuzz(func(t *testing.T, apdu []byte) {
		out := k.a.HandleMSG(context.Background(), apdu)
		if len(out) < 2 {
			t.Fatalf("response %x has no status word", out)
		}
	})
}
