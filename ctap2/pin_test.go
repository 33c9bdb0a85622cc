package ctap2_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/vkey-dev/vkey/ctap2"
)

// TestPINProtocolPrimitives checks both protocols against independent
// computations of CTAP 2.1 sections 6.5.6 and 6.5.7.
func TestPINProtocolPrimitives(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	msg := []byte("message to authenticate")
	one, _ := ctap2.PINProtocolFor(1)
	two, _ := ctap2.PINProtocolFor(2)
	mac := hmac.New(sha256.New, key)
	mac.Write(msg)
	full := mac.Sum(nil)
	if !bytes.Equal(one.Authenticate(key, msg), full[:16]) || !bytes.Equal(two.Authenticate(key, msg), full) {
		t.Error("authenticate: protocol 1 is HMAC-SHA-256 truncated to 16 bytes, protocol 2 the whole HMAC")
	}
	if one.Verify(key, msg, full) || !one.Verify(key, msg, full[:16]) || two.Verify(key, msg, full[:16]) || !two.Verify(key, msg, full) {
		t.Error("verify must insist on the protocol's length")
	}
	pt := bytes.Repeat([]byte{0xab}, 32)
	ct, _ := one.Encrypt(key, pt)
	block, _ := aes.NewCipher(key)
	want := make([]byte, 32)
	cipher.NewCBCEncrypter(block, make([]byte, 16)).CryptBlocks(want, pt)
	if !bytes.Equal(ct, want) {
		t.Error("protocol 1 encrypts with AES-256-CBC and a zero IV")
	}
	ct2, _ := two.Encrypt(append(bytes.Repeat([]byte{1}, 32), key...), pt)
	if len(ct2) != 48 {
		t.Fatalf("protocol 2 ciphertext is IV || data: %d bytes", len(ct2))
	}
	cipher.NewCBCEncrypter(block, ct2[:16]).CryptBlocks(want, pt)
	if !bytes.Equal(ct2[16:], want) {
		t.Error("protocol 2 encrypts with the AES half of the shared secret")
	}
	for _, p := range []ctap2.PINProtocol{one, two} {
		ct, _ := p.Encrypt(key, pt)
		back, err := p.Decrypt(key, ct)
		if err != nil || !bytes.Equal(back, pt) {
			t.Errorf("protocol %d round trip", p.Version())
		}
		if _, err := p.Decrypt(key, ct[:len(ct)-1]); err == nil {
			t.Errorf("protocol %d decrypts a truncated ciphertext", p.Version())
		}
	}
	// Protocol 2's KDF: HKDF-SHA-256 with a zero salt (RFC 5869 by hand).
	z := bytes.Repeat([]byte{9}, 32)
	secret, _ := two.KDF(z)
	prk := hmac.New(sha256.New, make([]byte, 32))
	prk.Write(z)
	expand := func(info string) []byte {
		m := hmac.New(sha256.New, prk.Sum(nil))
		m.Write([]byte(info))
		m.Write([]byte{1})
		return m.Sum(nil)
	}
	if !bytes.Equal(secret[:32], expand("CTAP2 HMAC key")) || !bytes.Equal(secret[32:], expand("CTAP2 AES key")) {
		t.Error("protocol 2 KDF")
	}
	s1, _ := one.KDF(z)
	if h := sha256.Sum256(z); !bytes.Equal(s1, h[:]) {
		t.Error("protocol 1 KDF is SHA-256(Z)")
	}
}

func TestPINLifecycle(t *testing.T) {
	for _, proto := range []uint64{1, 2} {
		k := newKey(t)
		ctx := context.Background()
		wantStatus(t, k.c.SetPIN(ctx, proto, "123"), ctap2.ErrPINPolicyViolation)
		if err := k.c.SetPIN(ctx, proto, string(bytes.Repeat([]byte{'x'}, 64))); err == nil {
			t.Error("a 64-byte PIN was accepted")
		}
		wantStatus(t, k.c.SetPIN(ctx, proto, string(bytes.Repeat([]byte{'x'}, 63))), ctap2.StatusOK)
		k = newKey(t)
		wantStatus(t, k.c.SetPIN(ctx, proto, "ab€d"), ctap2.StatusOK) // 4 code points
		wantStatus(t, k.c.SetPIN(ctx, proto, "5678"), ctap2.ErrNotAllowed)
		if n, _ := k.c.PINRetries(ctx); n != 8 {
			t.Errorf("retries %d, want 8", n)
		}
		_, err := k.c.PINToken(ctx, proto, "wrong", ctap2.PermGetAssertion, "")
		wantStatus(t, err, ctap2.ErrPINInvalid)
		if n, _ := k.c.PINRetries(ctx); n != 7 {
			t.Errorf("retries %d after one mismatch, want 7", n)
		}
		if _, err := k.c.PINToken(ctx, proto, "ab€d", ctap2.PermGetAssertion, ""); err != nil {
			t.Fatal(err)
		}
		if n, _ := k.c.PINRetries(ctx); n != 8 {
			t.Errorf("retries %d after the right PIN, want 8 again", n)
		}
		wantStatus(t, k.c.ChangePIN(ctx, proto, "nope", "9999"), ctap2.ErrPINInvalid)
		wantStatus(t, k.c.ChangePIN(ctx, proto, "ab€d", "99"), ctap2.ErrPINPolicyViolation)
		wantStatus(t, k.c.ChangePIN(ctx, proto, "ab€d", "9999"), ctap2.StatusOK)
		if _, err := k.c.PINToken(ctx, proto, "9999", 0, ""); err != nil {
			t.Errorf("getPinToken (CTAP 2.0) with the new PIN: %v", err)
		}
	}
}

// TestPINLockouts: three consecutive mismatches block until a power cycle;
// eight in all block the PIN (CTAP 2.1 section 6.5.5.7.2).
func TestPINLockouts(t *testing.T) {
	k := newKey(t)
	ctx := context.Background()
	wantStatus(t, k.c.SetPIN(ctx, 2, "1234"), ctap2.StatusOK)
	wrong := func() error { _, err := k.c.PINToken(ctx, 2, "0000", ctap2.PermGetAssertion, ""); return err }
	wantStatus(t, wrong(), ctap2.ErrPINInvalid)
	wantStatus(t, wrong(), ctap2.ErrPINInvalid)
	wantStatus(t, wrong(), ctap2.ErrPINAuthBlocked)
	_, err := k.c.PINToken(ctx, 2, "1234", ctap2.PermGetAssertion, "")
	wantStatus(t, err, ctap2.ErrPINAuthBlocked) // even the right PIN, until power cycle
	k.a.PowerCycle()
	wantStatus(t, wrong(), ctap2.ErrPINInvalid)
	wantStatus(t, wrong(), ctap2.ErrPINInvalid)
	wantStatus(t, wrong(), ctap2.ErrPINAuthBlocked)
	k.a.PowerCycle()
	wantStatus(t, wrong(), ctap2.ErrPINInvalid)
	wantStatus(t, wrong(), ctap2.ErrPINBlocked)
	// 3 + 3 + 2 = 8 mismatches: blocked for good.
	k.a.PowerCycle()
	if n, _ := k.c.PINRetries(ctx); n != 0 {
		t.Fatalf("retries %d, want 0", n)
	}
	_, err = k.c.PINToken(ctx, 2, "1234", ctap2.PermGetAssertion, "")
	wantStatus(t, err, ctap2.ErrPINBlocked)
}

// TestTokenPermissions: permissions, RP binding, expiry, reuse after use.
func TestTokenPermissions(t *testing.T) {
	k := newKey(t)
	ctx := context.Background()
	wantStatus(t, k.c.SetPIN(ctx, 2, "1234"), ctap2.StatusOK)
	// Discoverable credentials need UV once a PIN is set; others do not (makeCredUvNotRqd).
	_, err := k.c.MakeCredential(ctx, mcRequest(t, "example.com", []byte{1}, true))
	wantStatus(t, err, ctap2.ErrPUATRequired)
	if _, err := k.c.MakeCredential(ctx, mcRequest(t, "example.com", []byte{1}, false)); err != nil {
		t.Errorf("non-discoverable without UV: %v", err)
	}
	mc := func(perm ctap2.Permission, tokenRP, rp string) error {
		tok, err := k.c.PINToken(ctx, 2, "1234", perm, tokenRP)
		if err != nil {
			return err
		}
		req := mcRequest(t, rp, []byte{1}, true)
		req.PinUvAuthParam, req.PinUvAuthProtocol = tok.Param(req.ClientDataHash), tok.Version()
		_, err = k.c.MakeCredential(ctx, req)
		return err
	}
	// A token without the permission, or bound to another RP, is
	// CTAP2_ERR_PIN_AUTH_INVALID (CTAP 2.1 section 6.1.2 step 11).
	wantStatus(t, mc(ctap2.PermGetAssertion, "", "example.com"), ctap2.ErrPINAuthInvalid)
	wantStatus(t, mc(ctap2.PermMakeCredential, "other.example", "example.com"), ctap2.ErrPINAuthInvalid)
	wantStatus(t, mc(ctap2.PermMakeCredential, "example.com", "example.com"), ctap2.StatusOK)
	_, err = k.c.PINToken(ctx, 2, "1234", ctap2.PermBioEnrollment, "")
	wantStatus(t, err, ctap2.ErrUnauthorizedPermission)
	_, err = k.c.PINToken(ctx, 2, "1234", 0x80, "")
	wantStatus(t, err, ctap2.ErrUnauthorizedPermission)

	// A token's mc/ga permissions are used up by one makeCredential.
	tok, _ := k.c.PINToken(ctx, 2, "1234", ctap2.PermMakeCredential, "")
	req := mcRequest(t, "example.com", []byte{5}, true)
	req.PinUvAuthParam, req.PinUvAuthProtocol = tok.Param(req.ClientDataHash), tok.Version()
	if _, err := k.c.MakeCredential(ctx, req); err != nil {
		t.Fatal(err)
	}
	_, err = k.c.MakeCredential(ctx, req)
	wantStatus(t, err, ctap2.ErrPINAuthInvalid)

	// A wrong pinUvAuthParam, and an expired token.
	tok, _ = k.c.PINToken(ctx, 2, "1234", ctap2.PermMakeCredential, "")
	req.PinUvAuthParam = bytes.Repeat([]byte{1}, 32)
	_, err = k.c.MakeCredential(ctx, req)
	wantStatus(t, err, ctap2.ErrPINAuthInvalid)
	req.PinUvAuthParam = tok.Param(req.ClientDataHash)
	k.clock.Advance(11 * time.Minute)
	_, err = k.c.MakeCredential(ctx, req)
	wantStatus(t, err, ctap2.ErrPINAuthInvalid)
	// A power cycle forgets the token.
	tok, _ = k.c.PINToken(ctx, 2, "1234", ctap2.PermMakeCredential, "")
	k.a.PowerCycle()
	req.PinUvAuthParam = tok.Param(req.ClientDataHash)
	_, err = k.c.MakeCredential(ctx, req)
	wantStatus(t, err, ctap2.ErrPINAuthInvalid)
	// Touch probe with a PIN set: a zero-length pinUvAuthParam.
	probe := mustCBOR(t, map[int]any{1: make([]byte, 32), 2: map[string]any{"id": "example.com"},
		3: map[string]any{"id": []byte{1}}, 4: []any{map[string]any{"type": "public-key", "alg": -7}}, 8: []byte{}, 9: 2})
	if st, _ := k.raw(ctap2.CmdMakeCredential, probe); st != ctap2.ErrPINInvalid {
		t.Errorf("touch probe with a PIN set: %v, want CTAP2_ERR_PIN_INVALID", st)
	}
}

func TestClientPINErrors(t *testing.T) {
	k := newKey(t)
	for _, tc := range []struct {
		m    map[int]any
		want ctap2.Status
	}{
		{map[int]any{1: 2}, ctap2.ErrMissingParameter},
		{map[int]any{1: 2, 2: 0x42}, ctap2.ErrInvalidSubcommand},
		{map[int]any{2: 2}, ctap2.ErrMissingParameter},
		{map[int]any{1: 3, 2: 2}, ctap2.ErrInvalidParameter},
		{map[int]any{1: 2, 2: 3}, ctap2.ErrMissingParameter},
		{map[int]any{1: 2, 2: 3, 3: map[int]any{1: 2, 3: -25, -1: 1, -2: make([]byte, 32), -3: make([]byte, 32)}, 4: make([]byte, 32), 5: make([]byte, 80)}, ctap2.ErrInvalidParameter},
		{map[int]any{1: 2, 2: 5, 3: map[int]any{1: 2}, 6: make([]byte, 32)}, ctap2.ErrPINNotSet},
		{map[int]any{1: 2, 2: 6}, ctap2.ErrInvalidSubcommand},
	} {
		if st, _ := k.raw(ctap2.CmdClientPIN, mustCBOR(t, tc.m)); st != tc.want {
			t.Errorf("%v: got %v, want %v", tc.m, st, tc.want)
		}
	}
}

// TestHMACSecret: both protocols, the same output for the same salt, and a
// different CredRandom with and without UV (CTAP 2.1 section 12.5).
func TestHMACSecret(t *testing.T) {
	ctx := context.Background()
	k := newKey(t)
	req := mcRequest(t, "example.com", []byte{1}, true)
	req.Extensions = ctap2.MakeCredentialExtensions{HMACSecret: true}
	att, err := k.c.MakeCredential(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if att.AuthData[32]&0x80 == 0 {
		t.Fatal("ED flag missing: hmac-secret output expected")
	}
	id, _ := att.CredentialID()
	salt := bytes.Repeat([]byte{3}, 32)
	get := func(proto uint64, uv bool) []byte { return hmacSecretAssertion(t, k, proto, id, uv, salt) }
	a1, a2 := get(1, false), get(2, false)
	if !bytes.Equal(a1, a2) || len(a1) != 32 {
		t.Error("the same salt must give the same output under both protocols")
	}
	wantStatus(t, k.c.SetPIN(ctx, 2, "1234"), ctap2.StatusOK)
	if uv := get(2, true); bytes.Equal(uv, a1) {
		t.Error("with UV the output must come from the other CredRandom")
	}
}

// hmacSecretAssertion gets an assertion of credential id at example.com
// with hmac-secret for salts (with UV from PIN 1234 when uv) and returns
// the decrypted output.
func hmacSecretAssertion(t *testing.T, k *testKey, proto uint64, id []byte, uv bool, salts ...[]byte) []byte {
	t.Helper()
	ctx := context.Background()
	hs, err := k.c.NewHMACSecret(ctx, proto, salts...)
	if err != nil {
		t.Fatal(err)
	}
	ga := &ctap2.GetAssertionRequest{RPID: "example.com", ClientDataHash: make([]byte, 32),
		AllowList:  []ctap2.CredentialDescriptor{{Type: "public-key", ID: id}},
		Extensions: ctap2.GetAssertionExtensions{HMACSecret: hs.Input}}
	if uv {
		tok, err := k.c.PINToken(ctx, proto, "1234", ctap2.PermGetAssertion, "example.com")
		if err != nil {
			t.Fatal(err)
		}
		ga.PinUvAuthParam, ga.PinUvAuthProtocol = tok.Param(ga.ClientDataHash), tok.Version()
	}
	resp, err := k.c.GetAssertion(ctx, ga)
	if err != nil {
		t.Fatal(err)
	}
	var ext map[string]cbor.RawMessage
	if err := cbor.Unmarshal(resp.AuthData[37:], &ext); err != nil {
		t.Fatal(err)
	}
	var enc []byte
	if err := cbor.Unmarshal(ext["hmac-secret"], &enc); err != nil {
		t.Fatal(err)
	}
	out, err := hs.Output(enc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCredBlobAndLargeBlobKey(t *testing.T) {
	ctx := context.Background()
	k := newKey(t)
	req := mcRequest(t, "example.com", []byte{1}, true)
	req.Extensions = ctap2.MakeCredentialExtensions{CredBlob: []byte("blob!"), LargeBlobKey: true}
	att, err := k.c.MakeCredential(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if len(att.LargeBlobKey) != 32 {
		t.Fatal("largeBlobKey missing from makeCredential")
	}
	resp, err := k.c.GetAssertion(ctx, &ctap2.GetAssertionRequest{RPID: "example.com", ClientDataHash: make([]byte, 32),
		Extensions: ctap2.GetAssertionExtensions{CredBlob: true, LargeBlobKey: true}})
	if err != nil {
		t.Fatal(err)
	}
	var ext struct {
		CredBlob []byte `cbor:"credBlob"`
	}
	if err := cbor.Unmarshal(resp.AuthData[37:], &ext); err != nil || string(ext.CredBlob) != "blob!" {
		t.Errorf("credBlob %q (%v)", ext.CredBlob, err)
	}
	if !bytes.Equal(resp.LargeBlobKey, att.LargeBlobKey) {
		t.Error("largeBlobKey differs between registration and assertion")
	}
	req = mcRequest(t, "example.com", []byte{2}, true)
	req.Extensions = ctap2.MakeCredentialExtensions{CredBlob: make([]byte, 33)}
	att, err = k.c.MakeCredential(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := att.CredentialID()
	dec := cbor.NewDecoder(bytesReader(att.AuthData[55+len(id):]))
	var coseKey, outputs map[any]any
	if err := dec.Decode(&coseKey); err != nil {
		t.Fatal(err)
	}
	if err := dec.Decode(&outputs); err != nil {
		t.Fatalf("no extension outputs: %v", err)
	}
	if stored, ok := outputs["credBlob"]; !ok || stored != false {
		t.Errorf("credBlob output %v: a credBlob over maxCredBlobLength must be reported as not stored", outputs)
	}
}
