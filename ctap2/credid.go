package ctap2

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"

	"github.com/vkey-dev/vkey/keystore"
)

// Credential IDs are self-contained (ARCHITECTURE.md, "Credential IDs"):
//
//	version (1 byte) || nonce (12) || AES-256-GCM(WrapKey, payload)
//
// with the rpIdHash as additional data, so an ID that was tampered with, or
// that is presented for another relying party, does not open and is simply
// "not found" (CTAP 2.1 section 6.2.2 step 7 then answers
// CTAP2_ERR_NO_CREDENTIALS). The payload carries everything a
// non-discoverable credential needs: its private key (a software key, or a
// TPM-wrapped key that only that TPM can load) and its extension state.
//
// Version 2 (what new credentials get) is compact, so that a software ID is
// no longer than a hardware key's (at most 128 bytes) and a full allow or
// exclude list fits one message (issue 16):
//
//	kind (1) || alg (1, int8) || flags (1) || key || [len (1) || credBlob]
//
// kind 1 is a software P-256 key (its 32-byte scalar), kind 2 a software
// Ed25519 key (its 32-byte seed), kind 3 any other provider's blob
// (len(name) (1) || name || len(blob) (2, big-endian) || blob), kind 4 a
// software P-384 key (its 48-byte scalar), kind 5 a software P-521 key
// (its 66-byte scalar) and kind 6 a software RSA-2048 key with e = 65537
// (its primes p || q, 128 bytes each, from which the rest of the key is
// computed), so that an RSA ID (288 bytes) also stays within
// maxCredentialIdLength and the list limits hold for every algorithm.
// kind 7 carries no key: the credential, blob included, is kept in the
// store under this ID. It is what a provider blob gets when the ID would
// otherwise be longer than maxCredentialIdLength: a TPM's RSA-2048 key
// (about 540 bytes wrapped) makes a 33-byte ID (issue 13), and so does a
// TPM's P-256 key made by U2F_REGISTER, whose handle has a one-byte length
// (FIDO U2F raw message formats sections 4.3 and 5.4; a 32-byte handle,
// where the wrapped blob would make about 290). Such an ID is worth
// nothing once its stored credential is gone (deleted, or reset).
// flags holds the credProtect level (bits 0-1), hmac-secret (0x04),
// discoverable (0x08), whether a credBlob follows (0x10) and
// thirdPartyPayment (0x20, CTAP 2.2). An algorithm
// outside int8 (RS256 is -257) sets the kind's top bit (0x80) and takes two
// bytes (int16, big-endian). The hmac-secret CredRandom values
// are derived from the wrap key and the nonce instead of being carried.
// The version byte is part of the additional data.
//
// Version 1 (a CBOR map with a PKCS#8 key) is still opened: credentials and
// U2F key handles issued before version 2 keep working.

const (
	credIDVersion1 byte = 1
	credIDVersion2 byte = 2
)

const (
	credIDNonceLen = 12
	credIDOverhead = 1 + credIDNonceLen + 16 // version, nonce, GCM tag
	// maxCredentialIDLength is the longest credential ID this key accepts
	// and what getInfo advertises (CTAP 2.1 section 6.4,
	// maxCredentialIdLength; platforms drop longer IDs from their lists).
	// It covers every ID it has issued: version 2 IDs (at most 97 bytes
	// for ES256 and EdDSA software keys, 113 for ES384, 131 for ES512, 322
	// for RSA; on swtpm with every extension 325 for TPM ES256 keys, 373
	// for ES384, 427 for ES512 and 66 for RSA, whose key the store keeps)
	// and the version 1 IDs of
	// earlier releases (at most 310 bytes for software keys, about 430 for
	// TPM keys).
	maxCredentialIDLength = 512
)

// Version 2 key kinds and flags.
const (
	credKindP256     byte = 1
	credKindEd25519  byte = 2
	credKindProvider byte = 3
	credKindP384     byte = 4
	credKindP521     byte = 5
	credKindRSA      byte = 6
	credKindStored   byte = 7

	credFlagProtectMask byte = 0x03
	credFlagHMACSecret  byte = 0x04
	credFlagDiscover    byte = 0x08
	credFlagCredBlob    byte = 0x10
	credFlagPayment     byte = 0x20
	credKindWideAlg     byte = 0x80
)

// credIDPayload is what a version 1 credential ID seals.
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

// sealCredentialID makes the (version 2) credential ID of c for the
// relying party whose SHA-256 is rpIDHash. When c has hmac-secret
// (HMACSecret), it sets c's CredRandom values to those the ID derives.
func sealCredentialID(wrapKey, rpIDHash []byte, c *keystore.Credential) ([]byte, error) {
	id, _, err := sealCredentialIDWithin(wrapKey, rpIDHash, c, maxCredentialIDLength)
	return id, err
}

// sealCredentialIDWithin is sealCredentialID for an ID of at most maxLen
// bytes: a provider blob that would make it longer is left to the store
// (kind 7), and stored says so: the caller must then store c under the
// ID for it to work. U2F key handles take maxU2FKeyHandleLength. The
// other parts of c (a software key, a credBlob) are the caller's to keep
// within maxLen.
func sealCredentialIDWithin(wrapKey, rpIDHash []byte, c *keystore.Credential, maxLen int) (id []byte, stored bool, err error) {
	aead, err := credIDAEAD(wrapKey)
	if err != nil {
		return nil, false, err
	}
	payload, err := compactPayload(c, maxLen)
	if err != nil {
		return nil, false, err
	}
	nonce := make([]byte, credIDNonceLen)
	if _, err := rand.Read(nonce); err != nil {
		return nil, false, fmt.Errorf("credential ID nonce: %w", err)
	}
	if c.HMACSecret {
		c.CredRandomWithUV, c.CredRandomWithoutUV = deriveCredRandom(wrapKey, nonce)
	}
	id = make([]byte, 0, credIDOverhead+len(payload))
	id = append(id, credIDVersion2)
	id = append(id, nonce...)
	stored = payload[0]&^credKindWideAlg == credKindStored
	return aead.Seal(id, nonce, payload, credIDAD(rpIDHash, credIDVersion2)), stored, nil
}

// credIDAD is the additional data of a version 2 ID.
func credIDAD(rpIDHash []byte, version byte) []byte {
	return append(append(make([]byte, 0, len(rpIDHash)+1), rpIDHash...), version)
}

// deriveCredRandom gives the hmac-secret CredRandom values (with and
// without UV) of the version 2 ID with this nonce.
func deriveCredRandom(wrapKey, nonce []byte) (withUV, withoutUV []byte) {
	k := hmacSHA256(wrapKey, []byte("vkey credential ID CredRandom"))
	return hmacSHA256(k, append([]byte{1}, nonce...)), hmacSHA256(k, append([]byte{0}, nonce...))
}

// compactPayload encodes c as a version 2 payload of an ID of at most
// maxID bytes where a provider blob is concerned (see kind 7).
func compactPayload(c *keystore.Credential, maxID int) ([]byte, error) {
	if c.Algorithm < math.MinInt16 || c.Algorithm > math.MaxInt16 {
		return nil, fmt.Errorf("credential ID: algorithm %d out of range", c.Algorithm)
	}
	if c.CredProtect > 3 || len(c.CredBlob) > 255 {
		return nil, errors.New("credential ID: extension state out of range")
	}
	flags := c.CredProtect & credFlagProtectMask
	if c.HMACSecret {
		flags |= credFlagHMACSecret
	}
	if c.Discoverable {
		flags |= credFlagDiscover
	}
	if c.CredBlob != nil {
		flags |= credFlagCredBlob
	}
	if c.ThirdPartyPayment {
		flags |= credFlagPayment
	}
	wide := c.Algorithm < math.MinInt8 || c.Algorithm > math.MaxInt8
	kind, key := credKindProvider, []byte(nil)
	if c.Provider == keystore.SoftwareProviderName {
		kind, key = softwareKeyMaterial(c.KeyBlob)
	}
	out := []byte{kind, byte(int8(c.Algorithm)), flags}
	if wide {
		out = binary.BigEndian.AppendUint16([]byte{kind | credKindWideAlg}, uint16(int16(c.Algorithm)))
		out = append(out, flags)
	}
	if kind == credKindProvider {
		if len(c.Provider) > 255 || len(c.KeyBlob) > 0xffff {
			return nil, errors.New("credential ID: key blob too long")
		}
		key = append([]byte{byte(len(c.Provider))}, c.Provider...)
		key = binary.BigEndian.AppendUint16(key, uint16(len(c.KeyBlob)))
		key = append(key, c.KeyBlob...)
	}
	var credBlob []byte
	if c.CredBlob != nil {
		credBlob = append([]byte{byte(len(c.CredBlob))}, c.CredBlob...)
	}
	if kind == credKindProvider && credIDOverhead+len(out)+len(key)+len(credBlob) > maxID {
		// Kind 7: the key stays in the store (keyInStore).
		out[0] = credKindStored | out[0]&credKindWideAlg
		key = nil
	}
	out = append(append(out, key...), credBlob...)
	return out, nil
}

// keyInStore reports whether the credential ID of c leaves its key to the
// store (kind 7): the caller must store c, discoverable or not, for the ID
// to work. Only provider blobs too long for an ID are (a TPM's RSA key);
// U2F handles, shorter, ask sealCredentialIDWithin.
func keyInStore(c *keystore.Credential) bool {
	if c.Provider == keystore.SoftwareProviderName {
		return false // software keys always fit (kinds 1, 2, 4-6), and parsing them costs
	}
	p, err := compactPayload(c, maxCredentialIDLength)
	return err == nil && p[0]&^credKindWideAlg == credKindStored
}

// softwareKeyMaterial reduces a software PKCS#8 key to its scalar, seed or
// primes (see the kinds above); any other key stays a provider blob.
func softwareKeyMaterial(pkcs8 []byte) (byte, []byte) {
	k, err := x509.ParsePKCS8PrivateKey(pkcs8)
	if err != nil {
		return credKindProvider, nil
	}
	switch k := k.(type) {
	case *ecdsa.PrivateKey:
		kind := map[elliptic.Curve]byte{elliptic.P256(): credKindP256, elliptic.P384(): credKindP384, elliptic.P521(): credKindP521}[k.Curve]
		if b, err := k.Bytes(); err == nil && kind != 0 {
			return kind, b
		}
	case ed25519.PrivateKey:
		return credKindEd25519, k.Seed()
	case *rsa.PrivateKey:
		if len(k.Primes) == 2 && k.E == rsaExponent && k.N.BitLen() == keystore.RSAKeyBits &&
			len(k.Primes[0].Bytes()) == rsaPrimeLen && len(k.Primes[1].Bytes()) == rsaPrimeLen {
			return credKindRSA, append(k.Primes[0].FillBytes(make([]byte, rsaPrimeLen)), k.Primes[1].Bytes()...)
		}
	}
	return credKindProvider, nil
}

// RSA keys of kind 6: e = 65537 and two 1024-bit primes.
const (
	rsaExponent = 65537
	rsaPrimeLen = keystore.RSAKeyBits / 16
)

// credKindKeyLen is the length of the key material of a software kind.
var credKindKeyLen = map[byte]int{credKindP256: 32, credKindEd25519: 32, credKindP384: 48, credKindP521: 66, credKindRSA: 2 * rsaPrimeLen}

// softwareKeyBlob rebuilds the PKCS#8 blob of a software kind's key
// material; it fails on a scalar or primes that make no valid key.
func softwareKeyBlob(kind byte, key []byte) ([]byte, error) {
	switch kind {
	case credKindP256, credKindEd25519:
		return pkcs8Template(kind, key), nil
	case credKindP384, credKindP521:
		curve := elliptic.P384()
		if kind == credKindP521 {
			curve = elliptic.P521()
		}
		k, err := ecdsa.ParseRawPrivateKey(curve, key)
		if err != nil {
			return nil, err
		}
		return x509.MarshalPKCS8PrivateKey(k)
	case credKindRSA:
		p := new(big.Int).SetBytes(key[:rsaPrimeLen])
		q := new(big.Int).SetBytes(key[rsaPrimeLen:])
		one := big.NewInt(1)
		phi := new(big.Int).Mul(new(big.Int).Sub(p, one), new(big.Int).Sub(q, one))
		d := new(big.Int).ModInverse(big.NewInt(rsaExponent), phi)
		if d == nil {
			return nil, errors.New("credential ID: RSA primes without an inverse exponent")
		}
		k := &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: new(big.Int).Mul(p, q), E: rsaExponent}, D: d, Primes: []*big.Int{p, q}}
		if err := k.Validate(); err != nil {
			return nil, err
		}
		k.Precompute()
		return x509.MarshalPKCS8PrivateKey(k)
	}
	return nil, fmt.Errorf("credential ID: unknown key kind %d", kind)
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
	if len(id) < credIDOverhead || len(id) > maxCredentialIDLength {
		return nil, errCredIDInvalid
	}
	aead, err := credIDAEAD(wrapKey)
	if err != nil {
		return nil, err
	}
	nonce := id[1 : 1+credIDNonceLen]
	var c *keystore.Credential
	switch id[0] {
	case credIDVersion1:
		payload, err := aead.Open(nil, nonce, id[1+credIDNonceLen:], rpIDHash)
		if err != nil {
			return nil, errCredIDInvalid
		}
		var p credIDPayload
		if err := Unmarshal(payload, &p); err != nil {
			return nil, errCredIDInvalid
		}
		c = &keystore.Credential{
			Algorithm: p.Algorithm, Provider: p.Provider, KeyBlob: p.KeyBlob, CredProtect: p.CredProtect,
			CredRandomWithUV: p.CredRandomWithUV, CredRandomWithoutUV: p.CredRandomWithoutUV,
			CredBlob: p.CredBlob, Discoverable: p.Discoverable,
			HMACSecret: p.CredRandomWithUV != nil,
		}
	case credIDVersion2:
		payload, err := aead.Open(nil, nonce, id[1+credIDNonceLen:], credIDAD(rpIDHash, credIDVersion2))
		if err != nil {
			return nil, errCredIDInvalid
		}
		if c, err = parseCompactPayload(payload); err != nil {
			return nil, errCredIDInvalid
		}
		if c.HMACSecret {
			c.CredRandomWithUV, c.CredRandomWithoutUV = deriveCredRandom(wrapKey, nonce)
		}
	default:
		return nil, errCredIDInvalid
	}
	c.ID = append([]byte(nil), id...)
	return c, nil
}

// PKCS#8 encodings of a bare P-256 scalar (RFC 5915 ECPrivateKey without
// its optional public key) and of an Ed25519 seed (RFC 8410), before the 32
// key bytes. Building the blob from them costs no scalar multiplication:
// the provider's Load does the only one.
var (
	pkcs8P256Prefix = []byte{
		0x30, 0x41, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
		0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x04, 0x27, 0x30, 0x25, 0x02, 0x01,
		0x01, 0x04, 0x20,
	}
	pkcs8Ed25519Prefix = []byte{0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20}
)

// pkcs8Template is the PKCS#8 blob of a software key kind's 32 key bytes.
func pkcs8Template(kind byte, key []byte) []byte {
	prefix := pkcs8P256Prefix
	if kind == credKindEd25519 {
		prefix = pkcs8Ed25519Prefix
	}
	return append(append(make([]byte, 0, len(prefix)+len(key)), prefix...), key...)
}

// parseCompactPayload decodes a version 2 payload; it never panics.
func parseCompactPayload(p []byte) (*keystore.Credential, error) {
	errShort := errors.New("credential ID: truncated")
	if len(p) < 3 {
		return nil, errShort
	}
	kind, alg, flags := p[0], keystore.Algorithm(int8(p[1])), p[2]
	rest := p[3:]
	if kind&credKindWideAlg != 0 {
		if len(p) < 4 {
			return nil, errShort
		}
		kind, alg, flags, rest = kind&^credKindWideAlg, keystore.Algorithm(int16(binary.BigEndian.Uint16(p[1:3]))), p[3], p[4:]
	}
	c := &keystore.Credential{
		Algorithm: alg, CredProtect: flags & credFlagProtectMask,
		HMACSecret: flags&credFlagHMACSecret != 0, Discoverable: flags&credFlagDiscover != 0,
		ThirdPartyPayment: flags&credFlagPayment != 0,
	}
	switch kind {
	case credKindP256, credKindEd25519, credKindP384, credKindP521, credKindRSA:
		n := credKindKeyLen[kind]
		if len(rest) < n {
			return nil, errShort
		}
		blob, err := softwareKeyBlob(kind, rest[:n])
		if err != nil {
			return nil, err
		}
		c.Provider, c.KeyBlob, rest = keystore.SoftwareProviderName, blob, rest[n:]
	case credKindProvider:
		if len(rest) < 1 || len(rest) < 1+int(rest[0])+2 {
			return nil, errShort
		}
		c.Provider, rest = string(rest[1:1+int(rest[0])]), rest[1+int(rest[0]):]
		n := int(binary.BigEndian.Uint16(rest))
		if len(rest) < 2+n {
			return nil, errShort
		}
		c.KeyBlob, rest = append([]byte(nil), rest[2:2+n]...), rest[2+n:]
	case credKindStored:
		// No key here: the store holds the credential under this ID, and
		// without it (Provider and KeyBlob empty) the ID is no credential.
	default:
		return nil, fmt.Errorf("credential ID: unknown key kind %d", kind)
	}
	if flags&credFlagCredBlob != 0 {
		if len(rest) < 1 || len(rest) < 1+int(rest[0]) {
			return nil, errShort
		}
		c.CredBlob, rest = append([]byte{}, rest[1:1+int(rest[0])]...), rest[1+int(rest[0]):]
	}
	if len(rest) != 0 {
		return nil, errors.New("credential ID: trailing bytes")
	}
	return c, nil
}
