package ctap2_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/internal/webauthntest"
	"github.com/vkey-dev/vkey/keystore"
)

// longBlobProvider makes software keys whose blobs are too long for a
// credential ID, as a TPM's wrapped RSA-2048 key is (about 540 bytes).
type longBlobProvider struct{}

const longBlobPad = 600

func (longBlobProvider) Name() string { return "long" }
func (longBlobProvider) Supports(alg keystore.Algorithm) bool {
	return keystore.Software{}.Supports(alg)
}
func (longBlobProvider) Generate(alg keystore.Algorithm) ([]byte, keystore.Key, error) {
	blob, key, err := keystore.Software{}.Generate(alg)
	return append(blob, make([]byte, longBlobPad)...), key, err
}
func (longBlobProvider) Load(alg keystore.Algorithm, blob []byte) (keystore.Key, error) {
	if len(blob) < longBlobPad {
		return nil, errors.New("short blob")
	}
	return keystore.Software{}.Load(alg, blob[:len(blob)-longBlobPad])
}

// assertWith asks for an assertion with id in the allow list.
func assertWith(k *testKey, rpID string, id []byte) error {
	_, err := k.c.GetAssertion(context.Background(), &ctap2.GetAssertionRequest{RPID: rpID, ClientDataHash: make([]byte, 32),
		AllowList: []ctap2.CredentialDescriptor{{Type: "public-key", ID: id}}})
	return err
}

// TestKeyTooLongForID (issue 13): a device key whose blob would make the
// credential ID longer than maxCredentialIdLength is kept in the store,
// discoverable or not, and the ID only names it: the ID is short,
// go-webauthn verifies the registration and its assertions, deleting the
// stored credential (or a reset) ends it, and nothing else is stored.
func TestKeyTooLongForID(t *testing.T) {
	for _, rk := range []bool{false, true} {
		t.Run(fmt.Sprintf("rk=%v", rk), func(t *testing.T) {
			k := newKey(t, func(o *ctap2.Options) { o.DeviceKeys, o.Passkeys = longBlobProvider{}, ctap2.DeviceBound })
			rp, err := webauthntest.New("example.com")
			if err != nil {
				t.Fatal(err)
			}
			u := webauthntest.NewUser("alice")
			cred := register(t, k, rp, u, rk, -257)
			id := cred.ID
			if len(id) > 64 {
				t.Errorf("%d-byte credential ID: want a short reference to the stored key", len(id))
			}
			stored, err := k.store.Credential(id)
			if err != nil || stored.Provider != "long" || len(stored.KeyBlob) < longBlobPad || stored.Discoverable != rk {
				t.Fatalf("stored credential %+v, %v: want the provider's blob stored", stored, err)
			}
			u.Credentials = append(u.Credentials, *cred)
			login(t, k, rp, u, nil)
			if rk {
				login(t, k, rp, nil, []*webauthntest.User{u})
			}
			if err := k.store.DeleteCredential(id); err != nil {
				t.Fatal(err)
			}
			wantStatus(t, assertWith(k, rp.ID, id), ctap2.ErrNoCredentials)

			// A reset removes such credentials with everything else.
			id = register(t, k, rp, u, rk, -257).ID
			if err := k.c.Reset(context.Background()); err != nil {
				t.Fatal(err)
			}
			if all, err := k.store.Credentials(); err != nil || len(all) != 0 {
				t.Errorf("after reset the store holds %d credentials (%v)", len(all), err)
			}
			wantStatus(t, assertWith(k, rp.ID, id), ctap2.ErrNoCredentials)
		})
	}
}
