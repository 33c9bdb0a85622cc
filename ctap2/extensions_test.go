package ctap2_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/vkey-dev/vkey/ctap2"
)

// TestExtensionInputStatus pins the status codes of malformed extension
// inputs sent as raw CBOR: a value of the wrong type is
// CTAP2_ERR_CBOR_UNEXPECTED_TYPE (CTAP 2.1 section 8), largeBlobKey other
// than true CTAP2_ERR_INVALID_OPTION (section 12.3), an hmac-secret input
// lacking members CTAP2_ERR_MISSING_PARAMETER (section 12.5), and an
// extension the key does not implement is ignored (section 12). They are
// checked where the command processes its extensions: after the options,
// before user verification in makeCredential and before the credentials
// are looked up in getAssertion.
func TestExtensionInputStatus(t *testing.T) {
	raw := func(v any) cbor.RawMessage { return mustCBOR(t, v) }
	mc := func(ext cbor.RawMessage, rk bool) []byte {
		req := map[int]any{
			1: make([]byte, 32),
			2: map[string]any{"id": "example.com"},
			3: map[string]any{"id": []byte{1}, "name": "alice"},
			4: []any{map[string]any{"type": "public-key", "alg": -7}},
			6: ext,
		}
		if rk {
			req[7] = map[string]bool{"rk": true}
		}
		return mustCBOR(t, req)
	}
	ga := func(rpID string, ext cbor.RawMessage) []byte {
		return mustCBOR(t, map[int]any{1: rpID, 2: make([]byte, 32), 4: ext, 5: map[string]bool{"up": false}})
	}
	type ext = map[string]any
	mcCases := []struct {
		name string
		ext  cbor.RawMessage
		rk   bool
		want ctap2.Status
	}{
		{"not a map", raw(5), false, ctap2.ErrCBORUnexpectedType},
		{"integer key", raw(map[int]bool{1: true}), false, ctap2.ErrCBORUnexpectedType},
		// {"credProtect": 1, "credProtect": 2}: a duplicate key is not canonical CBOR.
		{"duplicate key", append(append([]byte{0xa2, 0x6b}, "credProtect\x01\x6b"...), "credProtect\x02"...), false, ctap2.ErrInvalidCBOR},
		{"unknown extension", raw(ext{"example": map[int]int{1: 2}}), false, ctap2.StatusOK},
		{"credProtect text", raw(ext{"credProtect": "x"}), false, ctap2.ErrCBORUnexpectedType},
		{"credProtect negative", raw(ext{"credProtect": -1}), false, ctap2.ErrCBORUnexpectedType},
		{"credProtect out of range", raw(ext{"credProtect": 7}), false, ctap2.StatusOK},
		{"hmac-secret integer", raw(ext{"hmac-secret": 1}), false, ctap2.ErrCBORUnexpectedType},
		{"credBlob bool", raw(ext{"credBlob": true}), false, ctap2.ErrCBORUnexpectedType},
		{"largeBlobKey false", raw(ext{"largeBlobKey": false}), true, ctap2.ErrInvalidOption},
		{"largeBlobKey integer", raw(ext{"largeBlobKey": 1}), true, ctap2.ErrCBORUnexpectedType},
		{"largeBlobKey without rk", raw(ext{"largeBlobKey": true}), false, ctap2.ErrInvalidOption},
		{"minPinLength text", raw(ext{"minPinLength": "x"}), false, ctap2.ErrCBORUnexpectedType},
		{"thirdPartyPayment integer", raw(ext{"thirdPartyPayment": 1}), false, ctap2.ErrCBORUnexpectedType},
		{"hmac-secret-mc alone is ignored", raw(ext{"hmac-secret-mc": 5}), false, ctap2.StatusOK},
		{"hmac-secret-mc integer", raw(ext{"hmac-secret": true, "hmac-secret-mc": 5}), false, ctap2.ErrCBORUnexpectedType},
		{"hmac-secret-mc empty", raw(ext{"hmac-secret": true, "hmac-secret-mc": map[int]int{}}), false, ctap2.ErrMissingParameter},
		{"hmac-secret-mc with hmac-secret false", raw(ext{"hmac-secret": false, "hmac-secret-mc": 5}), false, ctap2.StatusOK},
	}
	k := newKey(t)
	for _, tc := range mcCases {
		if got, _ := k.raw(ctap2.CmdMakeCredential, mc(tc.ext, tc.rk)); got != tc.want {
			t.Errorf("makeCredential, %s: %v, want %v", tc.name, got, tc.want)
		}
	}
	// A credential with every extension, for getAssertion.
	if got, _ := k.raw(ctap2.CmdMakeCredential, mc(raw(ext{"credBlob": []byte("b"), "largeBlobKey": true, "hmac-secret": true}), true)); got != ctap2.StatusOK {
		t.Fatalf("makeCredential with extensions: %v", got)
	}
	gaCases := []struct {
		name string
		rpID string
		ext  cbor.RawMessage
		want ctap2.Status
	}{
		{"not a map", "example.com", raw([]int{1}), ctap2.ErrCBORUnexpectedType},
		{"unknown extension", "example.com", raw(ext{"example": true}), ctap2.StatusOK},
		{"hmac-secret bool", "example.com", raw(ext{"hmac-secret": true}), ctap2.ErrCBORUnexpectedType},
		{"hmac-secret empty", "example.com", raw(ext{"hmac-secret": map[int]int{}}), ctap2.ErrMissingParameter},
		{"hmac-secret protocol 9", "example.com", raw(ext{"hmac-secret": map[int]any{1: map[int]int{1: 2}, 2: []byte{1}, 3: []byte{2}, 4: 9}}), ctap2.ErrInvalidParameter},
		{"credBlob integer", "example.com", raw(ext{"credBlob": 1}), ctap2.ErrCBORUnexpectedType},
		{"largeBlobKey false", "example.com", raw(ext{"largeBlobKey": false}), ctap2.ErrInvalidOption},
		{"thirdPartyPayment text", "example.com", raw(ext{"thirdPartyPayment": "x"}), ctap2.ErrCBORUnexpectedType},
		{"before the credentials are looked up", "other.example", raw(ext{"credBlob": 1}), ctap2.ErrCBORUnexpectedType},
		{"no credentials", "other.example", raw(ext{"credBlob": true}), ctap2.ErrNoCredentials},
	}
	for _, tc := range gaCases {
		if got, _ := k.raw(ctap2.CmdGetAssertion, ga(tc.rpID, tc.ext)); got != tc.want {
			t.Errorf("getAssertion, %s: %v, want %v", tc.name, got, tc.want)
		}
	}
	// Of several malformed inputs, the first in CTAP2 canonical order
	// (shorter identifiers first, the order a platform sends them in) is
	// reported, every time: hmac-secret's checks come in their turn.
	orderCases := []struct {
		name string
		msg  []byte
		cmd  byte
		want ctap2.Status
	}{
		{"credProtect before largeBlobKey", mc(raw(ext{"credProtect": "x", "largeBlobKey": false}), true), ctap2.CmdMakeCredential, ctap2.ErrCBORUnexpectedType},
		{"credBlob before hmac-secret", ga("example.com", raw(ext{"credBlob": 1, "hmac-secret": map[int]int{}})), ctap2.CmdGetAssertion, ctap2.ErrCBORUnexpectedType},
		{"hmac-secret before largeBlobKey", ga("example.com", raw(ext{"hmac-secret": map[int]int{}, "largeBlobKey": false})), ctap2.CmdGetAssertion, ctap2.ErrMissingParameter},
		{"hmac-secret before thirdPartyPayment", ga("example.com", raw(ext{"hmac-secret": true, "thirdPartyPayment": "x"})), ctap2.CmdGetAssertion, ctap2.ErrCBORUnexpectedType},
	}
	for _, tc := range orderCases {
		for range 20 {
			if got, _ := k.raw(tc.cmd, tc.msg); got != tc.want {
				t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
				break
			}
		}
	}

	// With a PIN set, a malformed extension is reported before the
	// missing pinUvAuthParam.
	wantStatus(t, k.c.SetPIN(context.Background(), 2, "1234"), ctap2.StatusOK)
	if got, _ := k.raw(ctap2.CmdMakeCredential, mc(raw(ext{"credProtect": "x"}), true)); got != ctap2.ErrCBORUnexpectedType {
		t.Errorf("makeCredential with a PIN set and a malformed credProtect: %v", got)
	}
}

// TestExtensionsWireFormat: the typed extension inputs encode as the map
// keyed by extension identifier that CTAP 2.1 section 12 defines (the form
// callers built by hand before), omit the parameter when empty, and decode
// back, keeping extensions without a field in Other.
func TestExtensionsWireFormat(t *testing.T) {
	proto := uint64(2)
	hs := &ctap2.HMACSecretInput{KeyAgreement: &ctap2.COSEKeyAgreement{Kty: 2, Alg: -25, Crv: 1, X: []byte{1}, Y: []byte{2}},
		SaltEnc: []byte{3}, SaltAuth: []byte{4}, PinUvAuthProtocol: &proto}
	hsMap := map[int]any{1: map[int]any{1: 2, 3: -25, -1: 1, -2: []byte{1}, -3: []byte{2}}, 2: []byte{3}, 3: []byte{4}, 4: 2}
	mc := ctap2.MakeCredentialExtensions{CredProtect: 2, HMACSecret: true, HMACSecretMC: hs, CredBlob: []byte{},
		LargeBlobKey: true, MinPINLength: true, ThirdPartyPayment: true, Other: map[string][]byte{"example": {0xf5}}}
	want := mustCBOR(t, map[string]any{"credProtect": 2, "hmac-secret": true, "hmac-secret-mc": hsMap, "credBlob": []byte{},
		"largeBlobKey": true, "minPinLength": true, "thirdPartyPayment": true, "example": true})
	if got := mustCBOR(t, mc); !bytes.Equal(got, want) {
		t.Errorf("makeCredential extensions encode as %x, want %x", got, want)
	}
	var back ctap2.MakeCredentialExtensions
	if err := ctap2.Unmarshal(want, &back); err != nil {
		t.Fatal(err)
	}
	if got := mustCBOR(t, back); !bytes.Equal(got, want) {
		t.Errorf("makeCredential extensions decode and encode as %x, want %x", got, want)
	}
	ga := ctap2.GetAssertionExtensions{HMACSecret: hs, CredBlob: true, LargeBlobKey: true, ThirdPartyPayment: true}
	want = mustCBOR(t, map[string]any{"hmac-secret": hsMap, "credBlob": true, "largeBlobKey": true, "thirdPartyPayment": true})
	if got := mustCBOR(t, ga); !bytes.Equal(got, want) {
		t.Errorf("getAssertion extensions encode as %x, want %x", got, want)
	}
	// Other sends a value no field can hold; a field set wins over it.
	if got, want := mustCBOR(t, ctap2.MakeCredentialExtensions{Other: map[string][]byte{"largeBlobKey": {0xf4}}}), mustCBOR(t, map[string]bool{"largeBlobKey": false}); !bytes.Equal(got, want) {
		t.Errorf("Other encodes as %x, want %x", got, want)
	}
	if got, want := mustCBOR(t, ctap2.MakeCredentialExtensions{LargeBlobKey: true, Other: map[string][]byte{"largeBlobKey": {0xf4}}}), mustCBOR(t, map[string]bool{"largeBlobKey": true}); !bytes.Equal(got, want) {
		t.Errorf("a field and Other encode as %x, want %x", got, want)
	}
	// Without extensions the parameter is absent.
	req := &ctap2.GetAssertionRequest{RPID: "example.com", ClientDataHash: []byte{1}}
	if got, want := mustCBOR(t, req), mustCBOR(t, map[int]any{1: "example.com", 2: []byte{1}}); !bytes.Equal(got, want) {
		t.Errorf("a request without extensions encodes as %x, want %x", got, want)
	}
}

// TestCOSEKeyWireFormat: credential management's publicKey (CTAP 2.1
// section 6.8, 0x08) is the COSE_Key map itself, not a byte string.
func TestCOSEKeyWireFormat(t *testing.T) {
	key := mustCBOR(t, map[int]any{1: 2, 3: -7, -1: 1, -2: []byte{1}, -3: []byte{2}})
	resp := ctap2.CredMgmtResponse{PublicKey: key}
	want := mustCBOR(t, map[int]any{8: cbor.RawMessage(key)})
	if got := mustCBOR(t, resp); !bytes.Equal(got, want) {
		t.Fatalf("encoded as %x, want %x", got, want)
	}
	var back ctap2.CredMgmtResponse
	if err := ctap2.Unmarshal(want, &back); err != nil || !bytes.Equal(back.PublicKey, key) || back.PublicKey.Algorithm() != -7 {
		t.Errorf("decoded %x (alg %d, %v), want %x", back.PublicKey, back.PublicKey.Algorithm(), err, key)
	}
	// Without a key (getCredsMetadata) the member is absent, not null.
	total := uint64(1)
	if got, want := mustCBOR(t, ctap2.CredMgmtResponse{ExistingResidentCredentialsCount: &total}), mustCBOR(t, map[int]any{1: 1}); !bytes.Equal(got, want) {
		t.Errorf("a response without a key encodes as %x, want %x", got, want)
	}
}
