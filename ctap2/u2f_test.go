package ctap2_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/binary"
	"testing"
	"time"

	"github.com/vkey-dev/vkey/ctap2"
)

func apdu(ins, p1 byte, data []byte) []byte {
	out := []byte{0, ins, p1, 0, 0, byte(len(data) >> 8), byte(len(data))}
	return append(out, data...)
}

// u2f sends an APDU, polling while the key answers
// SW_CONDITIONS_NOT_SATISFIED (it is asking for the touch).
func u2f(t *testing.T, k *testKey, cmd []byte) []byte {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		out := k.a.HandleMSG(context.Background(), cmd)
		if !bytes.HasSuffix(out, []byte{0x69, 0x85}) || time.Now().After(deadline) {
			return out
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestU2F: U2F_VERSION, U2F_REGISTER and U2F_AUTHENTICATE (FIDO U2F raw
// message formats) with their signatures checked, the status words of the
// errors, and a U2F key handle used through CTAP2 (CTAP 2.1 section 10).
func TestU2F(t *testing.T) {
	k := newKey(t, func(o *ctap2.Options) { o.Presence = ctap2.AutoPresence{} })
	if out := k.a.HandleMSG(context.Background(), []byte{0, 3, 0, 0}); string(out) != "U2F_V2\x90\x00" {
		t.Errorf("U2F_VERSION: %q", out)
	}
	app := sha256.Sum256([]byte("https://u2f.example.com"))
	chal := sha256.Sum256([]byte("challenge"))
	r := checkU2FRegistration(t, u2f(t, k, apdu(1, 0, append(chal[:], app[:]...))), app, chal)
	handle := r.handle
	auth := append(append(append([]byte{}, chal[:]...), app[:]...), byte(len(handle)))
	auth = append(auth, handle...)
	out := u2f(t, k, apdu(2, 3, auth))
	if !bytes.HasSuffix(out, []byte{0x90, 0x00}) || out[0]&1 != 1 {
		t.Fatalf("U2F_AUTHENTICATE: %x", out)
	}
	signed := append(append(append([]byte{}, app[:]...), out[:5]...), chal[:]...)
	digest := sha256.Sum256(signed)
	if !ecdsa.VerifyASN1(r.pub, digest[:], out[5:len(out)-2]) {
		t.Fatal("authentication signature does not verify")
	}
	first := binary.BigEndian.Uint32(out[1:5])
	out = u2f(t, k, apdu(2, 8, auth)) // dont-enforce-user-presence-and-sign
	if out[0]&1 != 0 || binary.BigEndian.Uint32(out[1:5]) <= first {
		t.Errorf("dont-enforce: flags %x, counter must grow", out[:5])
	}
	if out := k.a.HandleMSG(context.Background(), apdu(2, 7, auth)); !bytes.Equal(out, []byte{0x69, 0x85}) {
		t.Errorf("check-only on our handle: %x, want 6985", out)
	}
	other := sha256.Sum256([]byte("https://other.example"))
	bad := append(append(append([]byte{}, chal[:]...), other[:]...), auth[64:]...)
	if out := k.a.HandleMSG(context.Background(), apdu(2, 7, bad)); !bytes.Equal(out, []byte{0x6a, 0x80}) {
		t.Errorf("another application's handle: %x, want 6A80", out)
	}
	for _, tc := range []struct {
		cmd  []byte
		want []byte
	}{
		{[]byte{0, 1}, []byte{0x67, 0x00}},
		{apdu(1, 0, make([]byte, 10)), []byte{0x67, 0x00}},
		{[]byte{0x80, 3, 0, 0}, []byte{0x6e, 0x00}},
		{[]byte{0, 0x42, 0, 0}, []byte{0x6d, 0x00}},
	} {
		if out := k.a.HandleMSG(context.Background(), tc.cmd); !bytes.Equal(out, tc.want) {
			t.Errorf("%x: %x, want %x", tc.cmd, out, tc.want)
		}
	}
	// The key handle works through CTAP2 getAssertion with the appId as rpId.
	resp, err := k.c.GetAssertion(context.Background(), &ctap2.GetAssertionRequest{RPID: "https://u2f.example.com",
		ClientDataHash: make([]byte, 32), AllowList: []ctap2.CredentialDescriptor{{Type: "public-key", ID: handle}}})
	if err != nil || !bytes.Equal(resp.Credential.ID, handle) {
		t.Fatalf("U2F credential through CTAP2: %v", err)
	}
}
