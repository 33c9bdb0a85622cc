package ctap2_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/internal/swtpmtest"
)

// u2fAuthData is the data of a U2F_AUTHENTICATE request for handle.
func u2fAuthData(appID string, handle []byte) []byte {
	app := sha256.Sum256([]byte(appID))
	chal := sha256.Sum256([]byte("challenge"))
	data := append(append(append([]byte{}, chal[:]...), app[:]...), byte(len(handle)))
	return append(data, handle...)
}

// wantU2FNotOurs checks that every P1 of U2F_AUTHENTICATE answers
// SW_WRONG_DATA for handle without asking for a touch.
func wantU2FNotOurs(t *testing.T, k *testKey, appID string, handle []byte) {
	t.Helper()
	if len(handle) > 255 {
		// A U2F key handle has a one-byte length (U2F raw messages
		// section 5.1): this ID cannot even be sent.
		t.Logf("%d-byte ID: no U2F key handle", len(handle))
		return
	}
	before := k.up.n.Load()
	for _, p1 := range []byte{7, 3, 8} {
		if out := k.a.HandleMSG(context.Background(), apdu(2, p1, u2fAuthData(appID, handle))); !bytes.Equal(out, []byte{0x6a, 0x80}) {
			t.Errorf("U2F_AUTHENTICATE P1 %#x: %x, want 6A80 (not a U2F key handle)", p1, out)
		}
	}
	if n := k.up.n.Load() - before; n != 0 {
		t.Errorf("%d touches asked for a handle that is not ours", n)
	}
}

// TestU2FOnlyES256 (FIDO U2F raw message formats sections 4.3 and 5.4: U2F
// keys are ECDSA P-256): the ID of a CTAP2 credential of any other
// algorithm, software or TPM, is not a U2F key handle: check-only and
// authenticate answer SW_WRONG_DATA before any touch, as for an unknown
// handle (or one too long to be sent). A non-discoverable ES256
// credential is one: a software key's, and a TPM key's when its ID fits.
func TestU2FOnlyES256(t *testing.T) {
	const appID = "https://u2f.example.com"
	t.Run("software", func(t *testing.T) {
		k := newKey(t)
		for _, alg := range []int64{-8, -35, -36, -257, -37} {
			t.Run(fmt.Sprint(alg), func(t *testing.T) {
				wantU2FNotOurs(t, k, appID, k.register(t, mcRequest(t, appID, []byte{1}, false, alg)))
			})
		}
		id := k.register(t, mcRequest(t, appID, []byte{1}, false, -7))
		if out := k.a.HandleMSG(context.Background(), apdu(2, 7, u2fAuthData(appID, id))); !bytes.Equal(out, []byte{0x69, 0x85}) {
			t.Errorf("check-only on a software ES256 credential: %x, want 6985", out)
		}
	})
	t.Run("tpm", func(t *testing.T) {
		tp := openTPM(t, swtpmtest.Start(t))
		k := newKey(t, func(o *ctap2.Options) {
			o.DeviceKeys, o.Passkeys = tp.KeyProvider(), ctap2.DeviceBound
		})
		// RS256 and PS256 IDs leave their key to the store (kind 7).
		for _, alg := range []int64{-35, -36, -257, -37} {
			t.Run(fmt.Sprint(alg), func(t *testing.T) {
				wantU2FNotOurs(t, k, appID, k.register(t, mcRequest(t, appID, []byte{1}, false, alg)))
			})
		}
		// U2F_REGISTER on a key whose device-bound keys are the TPM's
		// makes a TPM P-256 key the store keeps, behind a short handle (a
		// handle carrying the TPM's wrapped key would not fit, below;
		// TestU2FTPMKeys); it authenticates.
		app, chal := sha256.Sum256([]byte(appID)), sha256.Sum256([]byte("challenge"))
		reg := u2f(t, k, apdu(1, 0, append(chal[:], app[:]...)))
		if !bytes.HasSuffix(reg, []byte{0x90, 0x00}) || reg[0] != 0x05 {
			t.Fatalf("U2F_REGISTER: %x", reg)
		}
		if out := u2f(t, k, apdu(2, 3, u2fAuthData(appID, reg[67:67+int(reg[66])]))); !bytes.HasSuffix(out, []byte{0x90, 0x00}) {
			t.Fatalf("U2F_AUTHENTICATE with a handle U2F_REGISTER made: %x", out)
		}
		att, err := k.c.MakeCredential(context.Background(), mcRequest(t, appID, []byte{1}, false, -7))
		if err != nil {
			t.Fatal(err)
		}
		id, err := att.CredentialID()
		if err != nil {
			t.Fatal(err)
		}
		if len(id) > 255 {
			// A TPM's wrapped P-256 key (about 290 bytes on swtpm) makes an
			// ID longer than a U2F key handle can be (one-byte length, U2F
			// raw messages section 5.1): U2F cannot name it.
			t.Logf("TPM ES256 ID: %d bytes, no U2F key handle", len(id))
			return
		}
		if stored, err := k.store.Credential(id); err == nil {
			t.Fatalf("a TPM ES256 non-discoverable credential is stored (%+v): its ID should carry its key", stored)
		}
		var cose map[int]any
		if err := cbor.Unmarshal(att.AuthData[37+16+2+len(id):], &cose); err != nil {
			t.Fatal(err)
		}
		x, _ := cose[-2].([]byte)
		y, _ := cose[-3].([]byte)
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			t.Fatal(err)
		}
		data := u2fAuthData(appID, id)
		if out := k.a.HandleMSG(context.Background(), apdu(2, 7, data)); !bytes.Equal(out, []byte{0x69, 0x85}) {
			t.Errorf("check-only on a TPM ES256 credential: %x, want 6985", out)
		}
		out := u2f(t, k, apdu(2, 3, data))
		if !bytes.HasSuffix(out, []byte{0x90, 0x00}) || out[0]&1 != 1 {
			t.Fatalf("U2F_AUTHENTICATE with a TPM ES256 credential: %x", out)
		}
		signed := append(append(append([]byte{}, data[32:64]...), out[:5]...), data[:32]...)
		digest := sha256.Sum256(signed)
		if !ecdsa.VerifyASN1(pub, digest[:], out[5:len(out)-2]) {
			t.Error("U2F signature of a TPM ES256 credential does not verify with its public key")
		}
	})
}
