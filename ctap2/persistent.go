package ctap2

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"

	"github.com/vkey-dev/vkey/keystore"
)

// The persistent pinUvAuthToken (CTAP 2.2, the pcmr permission and the
// perCredMgmtRO getInfo option): a token asked for with the pcmr
// permission alone, kept apart from the ordinary pinUvAuthToken, that a
// platform may keep and use for read-only credential management
// (getCredsMetadata, enumerateRPs, enumerateCredentials) without asking
// for the PIN again. A power cycle keeps it, and so does a restart of
// vkey: it lives in the store's PIN state (keystore.PINState
// PersistentToken, encrypted at rest like the rest of the store). A PIN
// change writes a new PIN state without it and authenticatorReset wipes
// the store, which are the two events that invalidate it. It never deletes or updates a
// credential, and the preview command (0x41) does not take it.

// PermPersistentCredMgmtRO is the pcmr permission (CTAP 2.2 section
// 6.5.5.7, permission 0x40).
const PermPersistentCredMgmtRO Permission = 0x40

// issuePersistentToken makes a new persistent token, replacing an earlier
// one but not the ordinary token, and returns it encrypted for the
// platform.
func (a *Authenticator) issuePersistentToken(proto PINProtocol, shared []byte) (any, error) {
	st, err := a.store.PINState()
	if err != nil {
		return nil, fmt.Errorf("reading PIN state: %w", err)
	}
	st.PersistentToken = randomBytes(32)
	enc, err := proto.Encrypt(shared, st.PersistentToken)
	if err != nil {
		return nil, err
	}
	if err := a.store.SetPINState(st); err != nil {
		return nil, fmt.Errorf("storing the persistent token: %w", err)
	}
	return clientPINResponse{PinUvAuthToken: enc}, nil
}

// persistentTokenVerifies reports whether param authenticates message
// with the persistent token; a store that cannot be read verifies
// nothing (the request then goes on to the ordinary token's checks).
func (a *Authenticator) persistentTokenVerifies(protocol *uint64, param, message []byte) bool {
	if protocol == nil || param == nil {
		return false
	}
	st, err := a.store.PINState()
	if err != nil || st.PersistentToken == nil {
		return false
	}
	proto, ok := PINProtocolFor(*protocol)
	return ok && proto.Verify(st.PersistentToken, message, param)
}

// readOnlyCredMgmt reports whether a credential management subcommand
// only reads, so that the persistent token may authorize it.
func readOnlyCredMgmt(sub uint64) bool {
	return sub == CredMgmtGetCredsMetadata || sub == CredMgmtEnumerateRPsBegin || sub == CredMgmtEnumerateCredentialsBegin
}

// encIdentifier is getInfo's encIdentifier (CTAP 2.2 section 6.4, key
// 0x19): the authenticator's 16-byte identifier, which only a holder of
// the persistent token can read, as IV (16 random bytes) ||
// AES-128-CBC(key, IV, identifier) with key = HKDF-SHA-256(salt = 32 zero
// bytes, IKM = the persistent token, info = "encIdentifier", L = 16) -- the
// construction python-fido2's Info.get_identifier decrypts and pico-fido
// produces. It is absent while there is no persistent token (nothing to
// derive the key from), and it is fresh on each getInfo (random IV) so an
// observer without the token cannot link two answers. The identifier is
// derived from the wrap key (like the enterprise attestation key, see
// enterpriseIdentity), so it stays across restarts and PIN changes and is
// new after authenticatorReset, which makes a new wrap key.
func (a *Authenticator) encIdentifier(st keystore.PINState) ([]byte, error) {
	if st.PersistentToken == nil {
		return nil, nil
	}
	mac := hmac.New(sha256.New, a.wrapKey)
	mac.Write([]byte("vkey encIdentifier"))
	identifier := mac.Sum(nil)[:aes.BlockSize]
	key, err := hkdf.Key(sha256.New, st.PersistentToken, make([]byte, 32), "encIdentifier", 16)
	if err != nil {
		return nil, fmt.Errorf("ctap2: deriving the encIdentifier key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("ctap2: encIdentifier cipher: %w", err)
	}
	out := make([]byte, 2*aes.BlockSize)
	copy(out, randomBytes(aes.BlockSize))
	cipher.NewCBCEncrypter(block, out[:aes.BlockSize]).CryptBlocks(out[aes.BlockSize:], identifier)
	return out, nil
}
