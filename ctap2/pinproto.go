package ctap2

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
)

// PIN/UV auth protocols one and two (CTAP 2.1 sections 6.5.6 and 6.5.7).

// PINProtocol is one PIN/UV auth protocol: its key agreement, symmetric
// encryption and authentication.
type PINProtocol interface {
	// Version is the protocol number (1 or 2).
	Version() uint64
	// KDF turns the ECDH shared point's x-coordinate Z into the shared secret.
	KDF(z []byte) ([]byte, error)
	// Encrypt encrypts with the shared secret or a token.
	Encrypt(key, plaintext []byte) ([]byte, error)
	// Decrypt decrypts with the shared secret or a token.
	Decrypt(key, ciphertext []byte) ([]byte, error)
	// Authenticate computes the HMAC of message.
	Authenticate(key, message []byte) []byte
	// Verify checks signature in constant time.
	Verify(key, message, signature []byte) bool
}

// PINProtocolFor returns PIN/UV auth protocol v, if supported.
func PINProtocolFor(v uint64) (PINProtocol, bool) {
	switch v {
	case 1:
		return pinProtocolOne{}, true
	case 2:
		return pinProtocolTwo{}, true
	}
	return nil, false
}

var errPINDecrypt = errors.New("ciphertext is not a whole number of blocks")

func aesCBC(key, iv, data []byte, encrypt bool) ([]byte, error) {
	if len(data)%aes.BlockSize != 0 {
		return nil, errPINDecrypt
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("pin protocol cipher: %w", err)
	}
	out := make([]byte, len(data))
	if encrypt {
		cipher.NewCBCEncrypter(block, iv).CryptBlocks(out, data)
	} else {
		cipher.NewCBCDecrypter(block, iv).CryptBlocks(out, data)
	}
	return out, nil
}

func hmacSHA256(key, message []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(message)
	return m.Sum(nil)
}

// pinProtocolOne: SHA-256(Z), AES-256-CBC with a zero IV, HMAC truncated to
// 16 bytes (CTAP 2.1 section 6.5.6).
type pinProtocolOne struct{}

func (pinProtocolOne) Version() uint64 { return 1 }

func (pinProtocolOne) KDF(z []byte) ([]byte, error) {
	s := sha256.Sum256(z)
	return s[:], nil
}

func (pinProtocolOne) Encrypt(key, plaintext []byte) ([]byte, error) {
	return aesCBC(key, make([]byte, aes.BlockSize), plaintext, true)
}

func (pinProtocolOne) Decrypt(key, ciphertext []byte) ([]byte, error) {
	return aesCBC(key, make([]byte, aes.BlockSize), ciphertext, false)
}

func (pinProtocolOne) Authenticate(key, message []byte) []byte {
	return hmacSHA256(key, message)[:16]
}

func (p pinProtocolOne) Verify(key, message, signature []byte) bool {
	return len(signature) == 16 && hmac.Equal(p.Authenticate(key, message), signature)
}

// pinProtocolTwo: HKDF-SHA-256 into an HMAC key and an AES key, AES-256-CBC
// with a random IV prepended, full 32-byte HMAC (CTAP 2.1 section 6.5.7).
type pinProtocolTwo struct{}

func (pinProtocolTwo) Version() uint64 { return 2 }

func (pinProtocolTwo) KDF(z []byte) ([]byte, error) {
	salt := make([]byte, 32)
	hmacKey, err := hkdf.Key(sha256.New, z, salt, "CTAP2 HMAC key", 32)
	if err != nil {
		return nil, fmt.Errorf("HKDF: %w", err)
	}
	aesKey, err := hkdf.Key(sha256.New, z, salt, "CTAP2 AES key", 32)
	if err != nil {
		return nil, fmt.Errorf("HKDF: %w", err)
	}
	return append(hmacKey, aesKey...), nil
}

// aesKey is the AES half of a protocol two shared secret; a 32-byte key
// (a pinUvAuthToken) is used whole.
func twoAESKey(key []byte) []byte {
	if len(key) == 64 {
		return key[32:]
	}
	return key
}

func (pinProtocolTwo) Encrypt(key, plaintext []byte) ([]byte, error) {
	iv := make([]byte, aes.BlockSize)
	if _, err := rand.Read(iv); err != nil {
		return nil, fmt.Errorf("IV: %w", err)
	}
	ct, err := aesCBC(twoAESKey(key), iv, plaintext, true)
	if err != nil {
		return nil, err
	}
	return append(iv, ct...), nil
}

func (pinProtocolTwo) Decrypt(key, ciphertext []byte) ([]byte, error) {
	if len(ciphertext) < aes.BlockSize {
		return nil, errPINDecrypt
	}
	return aesCBC(twoAESKey(key), ciphertext[:aes.BlockSize], ciphertext[aes.BlockSize:], false)
}

func (pinProtocolTwo) Authenticate(key, message []byte) []byte {
	return hmacSHA256(key[:32], message)
}

func (p pinProtocolTwo) Verify(key, message, signature []byte) bool {
	return len(signature) == 32 && hmac.Equal(p.Authenticate(key, message), signature)
}

// COSEKeyAgreement is the platform's or authenticator's key agreement key: a
// COSE_Key with alg -25 (ECDH-ES+HKDF-256), CTAP 2.1 section 6.5.6.
type COSEKeyAgreement struct {
	Kty int64  `cbor:"1,keyasint"`
	Alg int64  `cbor:"3,keyasint"`
	Crv int64  `cbor:"-1,keyasint"`
	X   []byte `cbor:"-2,keyasint"`
	Y   []byte `cbor:"-3,keyasint"`
}

// EncodeKeyAgreement encodes pub as a key agreement COSE_Key.
func EncodeKeyAgreement(pub *ecdh.PublicKey) COSEKeyAgreement {
	b := pub.Bytes() // 0x04 || X || Y
	return COSEKeyAgreement{Kty: 2, Alg: -25, Crv: 1, X: b[1:33], Y: b[33:65]}
}

// SharedSecret runs ECDH between priv and peer and applies p's KDF. A peer
// key that is not a valid P-256 point is CTAP1_ERR_INVALID_PARAMETER.
func SharedSecret(p PINProtocol, priv *ecdh.PrivateKey, peer *COSEKeyAgreement) ([]byte, error) {
	if peer.Kty != 2 || peer.Crv != 1 || len(peer.X) != 32 || len(peer.Y) != 32 {
		return nil, ErrInvalidParameter
	}
	point := append(append([]byte{4}, peer.X...), peer.Y...)
	pub, err := ecdh.P256().NewPublicKey(point)
	if err != nil {
		return nil, ErrInvalidParameter
	}
	z, err := priv.ECDH(pub)
	if err != nil {
		return nil, ErrInvalidParameter
	}
	return p.KDF(z)
}
