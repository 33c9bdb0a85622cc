package ctap2

import (
	"bytes"
	"context"
	"crypto"
	"testing"

	"github.com/vkey-dev/vkey/internal/swtpmtest"
	"github.com/vkey-dev/vkey/keystore"
	"github.com/vkey-dev/vkey/tpm"
)

// sealV1 makes a credential ID as releases before version 2 did.
func sealV1(t *testing.T, wrapKey, rpIDHash []byte, c *keystore.Credential) []byte {
	t.Helper()
	aead, err := credIDAEAD(wrapKey)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := Marshal(credIDPayload{
		Algorithm: c.Algorithm, Provider: c.Provider, KeyBlob: c.KeyBlob,
		CredProtect: c.CredProtect, CredRandomWithUV: c.CredRandomWithUV,
		CredRandomWithoutUV: c.CredRandomWithoutUV, CredBlob: c.CredBlob,
		Discoverable: c.Discoverable, Salt: randomBytes(16),
	})
	if err != nil {
		t.Fatal(err)
	}
	nonce := randomBytes(credIDNonceLen)
	return aead.Seal(append([]byte{credIDVersion1}, nonce...), nonce, payload, rpIDHash)
}

// fullCredential is a credential of alg with every extension's state.
func fullCredential(t *testing.T, p keystore.KeyProvider, alg keystore.Algorithm) *keystore.Credential {
	t.Helper()
	blob, _, err := p.Generate(alg)
	if err != nil {
		t.Fatal(err)
	}
	return &keystore.Credential{
		Algorithm: alg, Provider: p.Name(), KeyBlob: blob, CredProtect: 3, HMACSecret: true,
		CredRandomWithUV: randomBytes(32), CredRandomWithoutUV: randomBytes(32),
		CredBlob: bytes.Repeat([]byte{7}, maxCredBlobLength), Discoverable: true, ThirdPartyPayment: true,
	}
}

// TestCredentialIDVersions (issue 16 point 6, issue 13): new software IDs
// of ES256, EdDSA and ES384 keys are at most 128 bytes, ES512 and RSA ones within
// maxCredentialIdLength, and carry every extension's state and the key
// itself; IDs of the earlier format still open; any change to an ID, or
// another RP, is "not ours".
func TestCredentialIDVersions(t *testing.T) {
	wrapKey := randomBytes(32)
	h := sha256Sum([]byte("example.com"))
	for _, alg := range []keystore.Algorithm{keystore.AlgES256, keystore.AlgEdDSA, keystore.AlgEd25519,
		keystore.AlgES384, keystore.AlgES512, keystore.AlgRS256, keystore.AlgPS256} {
		c := fullCredential(t, keystore.Software{}, alg)
		id, err := sealCredentialID(wrapKey, h[:], c)
		if err != nil {
			t.Fatal(err)
		}
		limit := 128
		if alg == keystore.AlgES512 || alg == keystore.AlgRS256 || alg == keystore.AlgPS256 {
			limit = maxCredentialIDLength // P-521 with a full credBlob is 131 bytes, RSA 322
		}
		if len(id) > limit || id[0] != credIDVersion2 {
			t.Errorf("alg %d: version %d ID of %d bytes, want version 2 of at most %d", alg, id[0], len(id), limit)
		}
		t.Logf("alg %d: %d-byte ID with every extension", alg, len(id))
		got, err := openCredentialID(wrapKey, "example.com", id)
		if err != nil {
			t.Fatalf("alg %d: %v", alg, err)
		}
		sameCredential(t, got, c)
		key, err := (keystore.Software{}).Load(alg, got.KeyBlob)
		if err != nil {
			t.Fatalf("alg %d: key from the ID does not load: %v", alg, err)
		}
		orig, _ := (keystore.Software{}).Load(alg, c.KeyBlob)
		if !key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(orig.Public()) {
			t.Errorf("alg %d: the ID gives another key", alg)
		}
		if _, err := openCredentialID(wrapKey, "other.example", id); err == nil {
			t.Errorf("alg %d: ID opens for another RP", alg)
		}
		for i := range id {
			bad := bytes.Clone(id)
			bad[i] ^= 0x01
			if _, err := openCredentialID(wrapKey, "example.com", bad); err == nil {
				t.Fatalf("alg %d: ID with byte %d changed opens", alg, i)
			}
		}
		if alg != keystore.AlgES256 && alg != keystore.AlgEdDSA && alg != keystore.AlgEd25519 {
			continue // version 1 IDs were only ever issued for these
		}
		c.ThirdPartyPayment = false // version 1 IDs never carried it
		v1 := sealV1(t, wrapKey, h[:], c)
		old, err := openCredentialID(wrapKey, "example.com", v1)
		if err != nil {
			t.Fatalf("alg %d: a version 1 ID no longer opens: %v", alg, err)
		}
		sameCredential(t, old, c)
		if len(v1) > maxCredentialIDLength {
			t.Errorf("alg %d: version 1 ID of %d bytes is longer than the advertised %d", alg, len(v1), maxCredentialIDLength)
		}
	}
}

func sameCredential(t *testing.T, got, want *keystore.Credential) {
	t.Helper()
	if got.Algorithm != want.Algorithm || got.Provider != want.Provider || got.CredProtect != want.CredProtect ||
		!got.HMACSecret || len(got.CredRandomWithUV) != 32 || bytes.Equal(got.CredRandomWithUV, got.CredRandomWithoutUV) ||
		!bytes.Equal(got.CredRandomWithUV, want.CredRandomWithUV) || !bytes.Equal(got.CredBlob, want.CredBlob) || got.Discoverable != want.Discoverable ||
		got.ThirdPartyPayment != want.ThirdPartyPayment {
		t.Errorf("opened %+v, want %+v", got, want)
	}
}

// TestOldCredentialsStillWork: a non-discoverable credential and a U2F key
// handle issued in the version 1 format still sign after the change.
func TestOldCredentialsStillWork(t *testing.T) {
	a, err := New(Options{Store: keystore.NewMemory(0), Presence: AutoPresence{}})
	if err != nil {
		t.Fatal(err)
	}
	blob, _, _ := keystore.Software{}.Generate(keystore.AlgES256)
	c := &keystore.Credential{Algorithm: keystore.AlgES256, Provider: keystore.SoftwareProviderName, KeyBlob: blob}
	h := sha256Sum([]byte("example.com"))
	id := sealV1(t, a.wrapKey, h[:], c)
	params, _ := Marshal(GetAssertionRequest{RPID: "example.com", ClientDataHash: make([]byte, 32),
		AllowList: []CredentialDescriptor{{Type: publicKeyType, ID: id}}})
	if out := a.HandleCBOR(context.Background(), append([]byte{CmdGetAssertion}, params...)); out[0] != 0 {
		t.Errorf("getAssertion with a version 1 ID: status %#x", out[0])
	}
	appID := sha256Sum([]byte("https://example.com"))
	handle := sealV1(t, a.wrapKey, appID[:], c)
	n := 65 + len(handle) // extended length: a version 1 handle may exceed a short Lc
	apdu := append([]byte{0, U2FAuthenticate, u2fDontEnforce, 0, 0, byte(n >> 8), byte(n)}, make([]byte, 32)...)
	apdu = append(append(append(apdu, appID[:]...), byte(len(handle))), handle...)
	out := a.HandleMSG(context.Background(), apdu)
	if !bytes.HasSuffix(out, swNoError) {
		t.Errorf("U2F authenticate with a version 1 key handle: SW %x", out[len(out)-2:])
	}
}

// TestTPMCredentialIDLength: TPM-backed IDs, of either version and with
// every extension, fit maxCredentialIdLength: ES256, ES384 and ES512 ones
// carry the TPM's blob, RS256 and PS256 ones leave it to the store (issue
// 13: the wrapped RSA-2048 key alone is 542 bytes on swtpm).
func TestTPMCredentialIDLength(t *testing.T) {
	swtpmtest.Need(t)
	srv := swtpmtest.Start(t)
	tp, err := tpm.Open(srv.Spec())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tp.Close() })
	wrapKey := randomBytes(32)
	h := sha256Sum([]byte("example.com"))
	for _, alg := range []keystore.Algorithm{keystore.AlgES256, keystore.AlgES384, keystore.AlgES512, keystore.AlgRS256, keystore.AlgPS256} {
		if !tp.KeyProvider().Supports(alg) {
			t.Logf("alg %d: this TPM cannot make such keys", alg)
			continue
		}
		c := fullCredential(t, tp.KeyProvider(), alg)
		v2, err := sealCredentialID(wrapKey, h[:], c)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("alg %d: TPM credential ID with every extension: %d bytes (blob %d bytes)", alg, len(v2), len(c.KeyBlob))
		if len(v2) > maxCredentialIDLength {
			t.Errorf("alg %d: TPM credential ID of %d bytes, more than maxCredentialIdLength %d", alg, len(v2), maxCredentialIDLength)
		}
		rsa := alg == keystore.AlgRS256 || alg == keystore.AlgPS256
		if keyInStore(c) != rsa {
			t.Errorf("alg %d: keyInStore = %v", alg, !rsa)
		}
		got, err := openCredentialID(wrapKey, "example.com", v2)
		if err != nil || (!rsa && (!bytes.Equal(got.KeyBlob, c.KeyBlob) || got.Provider != tpm.ProviderName)) {
			t.Fatalf("alg %d: TPM ID does not round-trip: %v", alg, err)
		}
		if alg != keystore.AlgES256 {
			continue
		}
		v1 := sealV1(t, wrapKey, h[:], c)
		t.Logf("alg %d: version 1 ID %d bytes", alg, len(v1))
		if len(v1) > maxCredentialIDLength {
			t.Errorf("TPM version 1 credential ID of %d bytes, more than maxCredentialIdLength %d", len(v1), maxCredentialIDLength)
		}
	}
}

// FuzzOpenCredentialID: no input panics the parser of either version.
func FuzzOpenCredentialID(f *testing.F) {
	wrapKey := make([]byte, 32)
	f.Add([]byte{credKindProvider, 0xf9, credFlagCredBlob, 3, 't', 'p', 'm', 0, 1, 9, 1, 5})
	f.Add([]byte{credKindStored | credKindWideAlg, 0xfe, 0xff, credFlagCredBlob, 1, 5}) // RS256, key in the store
	f.Fuzz(func(t *testing.T, payload []byte) {
		_, _ = parseCompactPayload(payload)
		_, _ = openCredentialIDHash(wrapKey, make([]byte, 32), append([]byte{credIDVersion2}, payload...))
	})
}

// TestStoredKeyCredentialID (issue 13): a provider blob too long for an ID
// (a TPM's RSA key) gives a kind 7 ID that carries no key, only the
// extension state, and says so (keyInStore); a blob that fits (a TPM's
// ES256 key) keeps its ID format.
func TestStoredKeyCredentialID(t *testing.T) {
	wrapKey := randomBytes(32)
	h := sha256Sum([]byte("example.com"))
	c := &keystore.Credential{
		Algorithm: keystore.AlgRS256, Provider: tpm.ProviderName, KeyBlob: randomBytes(542), CredProtect: 3, HMACSecret: true,
		CredBlob: bytes.Repeat([]byte{7}, maxCredBlobLength), Discoverable: true, ThirdPartyPayment: true,
	}
	if !keyInStore(c) {
		t.Fatal("a 542-byte blob is not left to the store")
	}
	id, err := sealCredentialID(wrapKey, h[:], c)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stored-key ID with every extension: %d bytes", len(id))
	if len(id) > credIDOverhead+4+1+maxCredBlobLength {
		t.Errorf("%d-byte ID: it carries more than the extension state", len(id))
	}
	got, err := openCredentialID(wrapKey, "example.com", id)
	if err != nil {
		t.Fatal(err)
	}
	if got.KeyBlob != nil || got.Provider != "" {
		t.Errorf("the ID opens with provider %q and a %d-byte blob: want neither", got.Provider, len(got.KeyBlob))
	}
	got.Provider = c.Provider
	sameCredential(t, got, c)

	c.KeyBlob = randomBytes(300)
	if keyInStore(c) {
		t.Error("a 300-byte blob is left to the store")
	}
	id, err = sealCredentialID(wrapKey, h[:], c)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := openCredentialID(wrapKey, "example.com", id); err != nil || !bytes.Equal(got.KeyBlob, c.KeyBlob) {
		t.Errorf("a 300-byte blob does not round-trip in the ID: %v", err)
	}
}

// TestU2FHandleWithin: sealCredentialIDWithin a U2F key handle's 255
// bytes leaves a TPM ES256 blob (about 260 bytes on swtpm, a ~290-byte ID)
// to the store (kind 7, and says so), while a software P-256 key stays in
// its 64-byte handle as before.
func TestU2FHandleWithin(t *testing.T) {
	wrapKey := randomBytes(32)
	h := sha256Sum([]byte("https://u2f.example.com"))
	c := &keystore.Credential{Algorithm: keystore.AlgES256, Provider: tpm.ProviderName, KeyBlob: randomBytes(260)}
	id, stored, err := sealCredentialIDWithin(wrapKey, h[:], c, maxU2FKeyHandleLength)
	if err != nil || !stored || len(id) > maxU2FKeyHandleLength {
		t.Fatalf("TPM blob: %d-byte handle, stored %v (%v): want a short kind 7 handle", len(id), stored, err)
	}
	if got, err := openCredentialIDHash(wrapKey, h[:], id); err != nil || got.KeyBlob != nil || got.Algorithm != keystore.AlgES256 {
		t.Errorf("the handle opens as %+v (%v): want ES256 with no key", got, err)
	}
	if keyInStore(c) {
		t.Error("a 260-byte blob is left to the store for a CTAP2 ID")
	}
	blob, _, err := keystore.Software{}.Generate(keystore.AlgES256)
	if err != nil {
		t.Fatal(err)
	}
	c = &keystore.Credential{Algorithm: keystore.AlgES256, Provider: keystore.SoftwareProviderName, KeyBlob: blob}
	id, stored, err = sealCredentialIDWithin(wrapKey, h[:], c, maxU2FKeyHandleLength)
	if err != nil || stored || len(id) != 64 {
		t.Fatalf("software key: %d-byte handle, stored %v (%v): want the 64-byte handle carrying it", len(id), stored, err)
	}
}

// blockingProvider's Generate waits until release is closed.
type blockingProvider struct {
	keystore.Software
	release chan struct{}
}

func (p blockingProvider) Generate(alg keystore.Algorithm) ([]byte, keystore.Key, error) {
	<-p.release
	return p.Software.Generate(alg)
}

// TestGenerateKeyCancel: a client that cancels while the key is being
// made (seconds for a TPM's RSA key) gets CTAP2_ERR_KEEPALIVE_CANCEL at
// once.
func TestGenerateKeyCancel(t *testing.T) {
	p := blockingProvider{release: make(chan struct{})}
	defer close(p.release)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, _, err := generateKey(ctx, p, keystore.AlgRS256)
		done <- err
	}()
	cancel()
	if err := <-done; err != ErrKeepaliveCancel {
		t.Errorf("generateKey after cancel = %v, want CTAP2_ERR_KEEPALIVE_CANCEL", err)
	}
	if _, _, err := generateKey(context.Background(), keystore.Software{}, keystore.AlgES256); err != nil {
		t.Error(err)
	}
}

// TestU2FRefusesStoredKeyID: U2F has no use for an ID whose key only the
// store holds (a TPM's RSA key): check-only says "not ours".
func TestU2FRefusesStoredKeyID(t *testing.T) {
	a, err := New(Options{Store: keystore.NewMemory(0), Presence: AutoPresence{}})
	if err != nil {
		t.Fatal(err)
	}
	appID := sha256Sum([]byte("https://example.com"))
	handle, err := sealCredentialID(a.wrapKey, appID[:], &keystore.Credential{
		Algorithm: keystore.AlgRS256, Provider: tpm.ProviderName, KeyBlob: randomBytes(600)})
	if err != nil {
		t.Fatal(err)
	}
	n := 65 + len(handle)
	apdu := append([]byte{0, U2FAuthenticate, u2fCheckOnly, 0, byte(n)}, make([]byte, 32)...)
	apdu = append(append(append(apdu, appID[:]...), byte(len(handle))), handle...)
	if out := a.HandleMSG(context.Background(), apdu); !bytes.Equal(out, swWrongData) {
		t.Errorf("U2F check-only with a stored-key handle: SW %x, want 6a80", out)
	}
}
