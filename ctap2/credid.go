package ctap2

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/vkey-dev/vkey/keystore"
)

// Credential IDs are self-contained (ARCHITECTURE.md, "Credential IDs"):
//
//	version (1 byte, credIDVersion) || nonce (12) || AES-256-GCM(WrapKey, payload)
//
// with the rpIdHash as additional data, so an ID that was tampered with, or
// that is presented for another relying party, does not open and is simply
// "not found" (CTAP 2.1 section 6.2.2 step 7 then answers
// CTAP2_ERR_NO_CREDENTIALS). The payload carries everything a
// non-discoverable credential needs: its private key blob (a software key, or
// a TPM-wrapped key that only that TPM can load) and its extension state.

const credIDVersion byte = 1

const (
	credIDNonceLen = 12
	// maxCredentialIDLength is what getInfo advertises (CTAP 2.1 section 6.4,
	// maxCredentialIdLength); our IDs are well below it.
	maxCredentialIDLength = 1024
)

// credIDPayload is what a credential ID seals.
type credIDPayload struct {
	Algorithm           keystore.Algorithm `cbor:"1,keyasint"`
	Provider            string             `cbor:"2,keyasint"`
	KeyBlob             []byte             `cbor:"3,keyasint"`
	CredProtect         uint8              `cbor:"4,keyasint,omitempty"`
	CredRandomWithUV    []byte             `cbor:"5,keyasint,omitempty"`
	CredRandomWithoutUV []byte             `cbor:"6,keyasint,omitempty"`
	CredBlob            []byte             `cbor:"7,keyasint,omitempty"`
	Discoverable        bool               `cbor:"8,keyasint,omitempty"`
	// Salt makes two credentials with the same key material differ.
	Salt []byte `cbor:"9,keyasint"`
}

var errCredIDInvalid = errors.New("credential ID does not belong to this authenticator and relying party")

func credIDAEAD(wrapKey []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(wrapKey)
	if err != nil {
		return nil, fmt.Errorf("credential ID wrap key: %w", err)
	}
	return cipher.NewGCM(block)
}

// sealCredentialID makes the credential ID of c for the relying party whose
// SHA-256 is rpIDHash.
func sealCredentialID(wrapKey, rpIDHash []byte, c *keystore.Credential) ([]byte, error) {
	aead, err := credIDAEAD(wrapKey)
	if err != nil {
		return nil, err
	}
	salt := make([]byte, 16)
	nonce := make([]byte, credIDNonceLen)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("credential ID salt: %w", err)
	}
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("credential ID nonce: %w", err)
	}
	payload, err := Marshal(credIDPayload{
		Algorithm: c.Algorithm, Provider: c.Provider, KeyBlob: c.KeyBlob,
		CredProtect: c.CredProtect, CredRandomWithUV: c.CredRandomWithUV,
		CredRandomWithoutUV: c.CredRandomWithoutUV, CredBlob: c.CredBlob,
		Discoverable: c.Discoverable, Salt: salt,
	})
	if err != nil {
		return nil, fmt.Errorf("encoding credential ID: %w", err)
	}
	id := make([]byte, 0, 1+credIDNonceLen+len(payload)+aead.Overhead())
	id = append(id, credIDVersion)
	id = append(id, nonce...)
	return aead.Seal(id, nonce, payload, rpIDHash), nil
}

// openCredentialID recovers the credential sealed in id for rpID. Any
// failure is errCredIDInvalid: an ID we cannot open is not ours.
func openCredentialID(wrapKey []byte, rpID string, id []byte) (*keystore.Credential, error) {
	rpIDHash := sha256Sum([]byte(rpID))
	c, err := openCredentialIDHash(wrapKey, rpIDHash[:], id)
	if err != nil {
		return nil, err
	}
	c.RPID = rpID
	return c, nil
}

// openCredentialIDHash is openCredentialID for a caller that knows only the
// RP ID's hash (U2F's application parameter). The result has no RPID.
func openCredentialIDHash(wrapKey, rpIDHash, id []byte) (*keystore.Credential, error) {
	if len(id) < 1+credIDNonceLen+16 || id[0] != credIDVersion || len(id) > maxCredentialIDLength {
		return nil, errCredIDInvalid
	}
	aead, err := credIDAEAD(wrapKey)
	if err != nil {
		return nil, err
	}
	payload, err := aead.Open(nil, id[1:1+credIDNonceLen], id[1+credIDNonceLen:], rpIDHash)
	if err != nil {
		return nil, errCredIDInvalid
	}
	var p credIDPayload
	if err := Unmarshal(payload, &p); err != nil {
		return nil, errCredIDInvalid
	}
	return &keystore.Credential{
		ID: append([]byte(nil), id...), Algorithm: p.Algorithm,
		Provider: p.Provider, KeyBlob: p.KeyBlob, CredProtect: p.CredProtect,
		CredRandomWithUV: p.CredRandomWithUV, CredRandomWithoutUV: p.CredRandomWithoutUV,
		CredBlob: p.CredBlob, Discoverable: p.Discoverable,
		HMACSecret: p.CredRandomWithUV != nil,
	}, nil
}
