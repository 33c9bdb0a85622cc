package ctap2_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/internal/swtpmtest"
	"github.com/vkey-dev/vkey/keystore"
	"github.com/vkey-dev/vkey/tpm"
)

// u2fRegistration is a U2F_REGISTER response whose attestation signature
// verified (U2F raw messages section 4.3).
type u2fRegistration struct {
	pub    *ecdsa.PublicKey
	handle []byte
	cert   *x509.Certificate
}

// checkU2FRegistration parses a U2F_REGISTER response to chal for app and
// verifies its signature with its attestation certificate.
func checkU2FRegistration(t *testing.T, reg []byte, app, chal [32]byte) u2fRegistration {
	t.Helper()
	if !bytes.HasSuffix(reg, []byte{0x90, 0x00}) || len(reg) < 70 || reg[0] != 0x05 {
		t.Fatalf("U2F_REGISTER: %x", reg)
	}
	point := reg[1:66]
	handle := reg[67 : 67+int(reg[66])]
	rest := reg[67+int(reg[66]) : len(reg)-2]
	var cert *x509.Certificate
	var sig []byte
	// The certificate is followed by the signature: find the split.
	for i := 200; i < len(rest) && cert == nil; i++ {
		if c, err := x509.ParseCertificate(rest[:i]); err == nil {
			cert, sig = c, rest[i:]
		}
	}
	if cert == nil {
		t.Fatal("no attestation certificate in the registration")
	}
	signed := append([]byte{0}, app[:]...)
	signed = append(signed, chal[:]...)
	signed = append(signed, handle...)
	signed = append(signed, point...)
	digest := sha256.Sum256(signed)
	if !ecdsa.VerifyASN1(cert.PublicKey.(*ecdsa.PublicKey), digest[:], sig) {
		t.Fatal("registration signature does not verify with the attestation certificate")
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
	if err != nil {
		t.Fatalf("registration public key: %v", err)
	}
	return u2fRegistration{pub: pub, handle: append([]byte(nil), handle...), cert: cert}
}

// u2fSign authenticates with P1 control and checks the signature with pub:
// it returns the counter and the flags.
func u2fSign(t *testing.T, k *testKey, control byte, appID string, handle []byte, pub *ecdsa.PublicKey) (uint32, byte) {
	t.Helper()
	data := u2fAuthData(appID, handle)
	out := u2f(t, k, apdu(2, control, data))
	if !bytes.HasSuffix(out, []byte{0x90, 0x00}) || len(out) < 8 {
		t.Fatalf("U2F_AUTHENTICATE P1 %#x: %x", control, out)
	}
	signed := append(append(append([]byte{}, data[32:64]...), out[:5]...), data[:32]...)
	digest := sha256.Sum256(signed)
	if !ecdsa.VerifyASN1(pub, digest[:], out[5:len(out)-2]) {
		t.Fatalf("U2F_AUTHENTICATE P1 %#x: the signature does not verify with the registered key", control)
	}
	return binary.BigEndian.Uint32(out[1:5]), out[0]
}

// u2fRegister registers for appID through U2F and checks the answer.
func u2fRegister(t *testing.T, k *testKey, appID string) (u2fRegistration, time.Duration) {
	t.Helper()
	app, chal := sha256.Sum256([]byte(appID)), sha256.Sum256([]byte("register "+appID))
	cmd := apdu(1, 0, append(chal[:], app[:]...))
	k.a.HandleMSG(context.Background(), cmd) // asks for the touch, which comes at once
	time.Sleep(20 * time.Millisecond)
	start := time.Now() // the time of the answer, without the client's polling
	reg := u2f(t, k, cmd)
	took := time.Since(start)
	return checkU2FRegistration(t, reg, app, chal), took
}

// TestU2FTPMKeys: with device-bound keys in the TPM (swtpm), U2F_REGISTER
// makes a non-exportable TPM P-256 key that the store keeps (a TPM-wrapped
// key makes a CTAP2 ID of about 290 bytes, more than a U2F key handle's
// one-byte length allows, FIDO U2F raw message formats sections 4.3 and
// 5.4): its handle is short, the attestation is the usual one, check-only,
// enforce and dont-enforce sign through the TPM with a counter that only
// grows, also through CTAP2 getAssertion with the application ID as rpId
// (the AppID extension); credential management does not see it; the same
// store in front of another TPM, or after a reset, does not know it.
func TestU2FTPMKeys(t *testing.T) {
	const appID = "https://u2f.example.com"
	tpA := openTPM(t, swtpmtest.Start(t))
	store := keystore.NewMemory(0)
	k := newKey(t, func(o *ctap2.Options) { o.Store, o.DeviceKeys = store, tpA.KeyProvider() })
	k.store = store
	soft := newKey(t) // software keys: what U2F_REGISTER made before
	softReg, _ := u2fRegister(t, soft, appID)

	reg, regTook := u2fRegister(t, k, appID)
	if len(reg.handle) > 255 || len(reg.handle) > len(softReg.handle) {
		t.Fatalf("%d-byte TPM key handle (software: %d bytes): want at most 255", len(reg.handle), len(softReg.handle))
	}
	if !reg.cert.Equal(checkU2FRegistration(t, u2f(t, k, apdu(1, 0, make([]byte, 64))), [32]byte{}, [32]byte{}).cert) {
		t.Error("two registrations have different attestation certificates")
	}

	// The store holds the key only as the TPM's wrapped blob.
	stored, err := store.Credential(reg.handle)
	if err != nil {
		t.Fatalf("the TPM key's credential is not stored: %v", err)
	}
	if stored.Provider != tpm.ProviderName || stored.Discoverable || stored.BackupEligible || stored.Algorithm != keystore.AlgES256 {
		t.Errorf("stored %+v: want a non-discoverable device-bound TPM ES256 credential", stored)
	}
	key := wantTPMOnlyKey(t, tpA, keystore.AlgES256, stored.KeyBlob, tpm2.TPMAlgECC)
	if !reg.pub.Equal(key.Public()) {
		t.Error("the stored TPM key is not the registered public key")
	}
	if n, err := store.DiscoverableCount(); err != nil || n != 0 {
		t.Errorf("%d discoverable credentials (%v): a U2F credential is not one", n, err)
	}

	data := u2fAuthData(appID, reg.handle)
	if out := k.a.HandleMSG(context.Background(), apdu(2, 7, data)); !bytes.Equal(out, []byte{0x69, 0x85}) {
		t.Errorf("check-only on the TPM key's handle: %x, want 6985", out)
	}
	k.a.HandleMSG(context.Background(), apdu(2, 3, data)) // asks for the touch
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	first, flags := u2fSign(t, k, 3, appID, reg.handle, reg.pub)
	authTook := time.Since(start)
	if flags != 1 {
		t.Errorf("enforce: flags %#x, want UP", flags)
	}
	start = time.Now()
	second, flags := u2fSign(t, k, 8, appID, reg.handle, reg.pub)
	plainTook := time.Since(start)
	if flags != 0 || second <= first {
		t.Errorf("dont-enforce: flags %#x, counter %d after %d: want 0 and a larger counter", flags, second, first)
	}
	wantU2FNotOurs(t, k, "https://other.example", reg.handle)
	// More keys than a simulator holds loaded objects (3): each use is
	// loaded and flushed.
	for i := range 5 {
		r, _ := u2fRegister(t, k, fmt.Sprintf("https://%d.example", i))
		u2fSign(t, k, 8, fmt.Sprintf("https://%d.example", i), r.handle, r.pub)
	}

	// CTAP2 getAssertion with the application ID as rpId (the AppID
	// extension) signs with it as with a U2F key sealed in its handle; the
	// counter keeps growing across both.
	cdh := sha256.Sum256([]byte("client data"))
	for _, c := range []struct {
		k      *testKey
		handle []byte
		pub    *ecdsa.PublicKey
	}{{k, reg.handle, reg.pub}, {soft, softReg.handle, softReg.pub}} {
		resp, err := c.k.c.GetAssertion(context.Background(), &ctap2.GetAssertionRequest{RPID: appID, ClientDataHash: cdh[:],
			AllowList: []ctap2.CredentialDescriptor{{Type: "public-key", ID: c.handle}}})
		if err != nil || !bytes.Equal(resp.Credential.ID, c.handle) {
			t.Fatalf("U2F credential through CTAP2 getAssertion: %v", err)
		}
		digest := sha256.Sum256(append(append([]byte{}, resp.AuthData...), cdh[:]...))
		if !ecdsa.VerifyASN1(c.pub, digest[:], resp.Signature) {
			t.Error("CTAP2 assertion of a U2F credential does not verify")
		}
	}
	if third, _ := u2fSign(t, k, 8, appID, reg.handle, reg.pub); third <= second+1 {
		t.Errorf("counter %d after %d and a CTAP2 assertion: it must keep growing", third, second)
	}
	// Another RP ID's getAssertion does not find it; nor does the exclude
	// list of another RP, while the application ID's own does.
	if _, err := k.c.GetAssertion(context.Background(), &ctap2.GetAssertionRequest{RPID: "u2f.example.com", ClientDataHash: cdh[:],
		AllowList: []ctap2.CredentialDescriptor{{Type: "public-key", ID: reg.handle}}}); err == nil {
		t.Error("another RP ID's getAssertion signs with the U2F credential")
	}
	req := mcRequest(t, appID, []byte{1}, false, -7)
	req.ExcludeList = []ctap2.CredentialDescriptor{{Type: "public-key", ID: reg.handle}}
	_, err = k.c.MakeCredential(context.Background(), req)
	wantStatus(t, err, ctap2.ErrCredentialExcluded)

	// A software key handle made before keeps working in TPM mode.
	softStore := keystore.NewMemory(0)
	before := newKey(t, func(o *ctap2.Options) { o.Store = softStore })
	old, _ := u2fRegister(t, before, appID)
	after := newKey(t, func(o *ctap2.Options) { o.Store, o.DeviceKeys = softStore, tpA.KeyProvider() })
	u2fSign(t, after, 3, appID, old.handle, old.pub)

	// The same store in front of another TPM, or without the TPM: not ours.
	tpB := openTPM(t, swtpmtest.Start(t))
	wantU2FNotOurs(t, newKey(t, func(o *ctap2.Options) { o.Store, o.DeviceKeys = store, tpB.KeyProvider() }), appID, reg.handle)
	wantU2FNotOurs(t, newKey(t, func(o *ctap2.Options) { o.Store = store }), appID, reg.handle)

	// Deleted (control API), then reset: gone.
	second2, _ := u2fRegister(t, k, appID)
	if err := k.a.RemoveCredential(second2.handle); err != nil {
		t.Fatal(err)
	}
	wantU2FNotOurs(t, k, appID, second2.handle)
	wantStatus(t, k.c.Reset(context.Background()), ctap2.StatusOK)
	wantU2FNotOurs(t, k, appID, reg.handle)
	if _, err := store.Credential(reg.handle); err == nil {
		t.Error("the TPM key's credential outlived the reset")
	}
	// Syncable passkeys do not change it: no backup holds a U2F key.
	sync := newKey(t, func(o *ctap2.Options) { o.DeviceKeys, o.Passkeys = tpA.KeyProvider(), ctap2.Syncable })
	r, _ := u2fRegister(t, sync, appID)
	if c, err := sync.store.Credential(r.handle); err != nil || c.Provider != tpm.ProviderName || c.BackupEligible {
		t.Errorf("U2F with syncable passkeys: stored %+v (%v), want a device-bound TPM key", c, err)
	}
	t.Logf("TPM U2F key handle %d bytes (software %d); U2F register %v, authenticate %v (dont-enforce, no touch: %v)",
		len(reg.handle), len(softReg.handle), regTook.Round(100*time.Microsecond), authTook.Round(100*time.Microsecond),
		plainTook.Round(100*time.Microsecond))
}
