package keystore

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"fmt"
)

// COSE algorithms beyond ES256 and EdDSA (RFC 9053 section 2.1, RFC 8230
// section 2, IANA COSE Algorithms registry).
const (
	// AlgES384 is ECDSA over P-384 with SHA-384.
	AlgES384 Algorithm = -35
	// AlgES512 is ECDSA over P-521 with SHA-512.
	AlgES512 Algorithm = -36
	// AlgPS256 is RSASSA-PSS with SHA-256, MGF1 with SHA-256 and a 32-byte salt.
	AlgPS256 Algorithm = -37
	// AlgRS256 is RSASSA-PKCS1-v1_5 with SHA-256.
	AlgRS256 Algorithm = -257
)

// RSAKeyBits is the modulus size of RSA credential keys: 2048 bits, what
// RFC 8230 section 6 sets as the minimum and what TPMs offer.
const RSAKeyBits = 2048

// SoftwareAlgorithms are the algorithms Software makes keys for, in
// vkey's default order of preference.
var SoftwareAlgorithms = []Algorithm{AlgES256, AlgEdDSA, AlgES384, AlgES512, AlgRS256, AlgPS256}

// SoftwareProviderName is the Provider recorded for software keys.
const SoftwareProviderName = "software"

// Software is the KeyProvider of software keys: ES256 (P-256), EdDSA
// (Ed25519), ES384 (P-384), ES512 (P-521), RS256 and PS256 (RSA-2048). Its blobs are PKCS#8 private keys, which the caller must keep
// secret.
type Software struct{}

// Name implements KeyProvider.
func (Software) Name() string { return SoftwareProviderName }

// Supports implements KeyProvider.
func (Software) Supports(alg Algorithm) bool {
	switch alg {
	case AlgES256, AlgEdDSA, AlgEd25519, AlgES384, AlgES512, AlgRS256, AlgPS256:
		return true
	}
	return false
}

// Generate implements KeyProvider.
func (s Software) Generate(alg Algorithm) ([]byte, Key, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case AlgES256, AlgES384, AlgES512:
		priv, err = ecdsa.GenerateKey(curveOf(alg), rand.Reader)
	case AlgRS256, AlgPS256:
		priv, err = rsa.GenerateKey(rand.Reader, RSAKeyBits)
	case AlgEdDSA, AlgEd25519:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, nil, fmt.Errorf("software key: unsupported algorithm %d", alg)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("software key: generate: %w", err)
	}
	blob, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, fmt.Errorf("software key: marshal: %w", err)
	}
	return blob, &softwareKey{alg: alg, priv: priv}, nil
}

// Load implements KeyProvider.
func (s Software) Load(alg Algorithm, blob []byte) (Key, error) {
	return ParseSoftwareKey(alg, blob)
}

// ParseSoftwareKey parses a PKCS#8 private key (an ECDSA key on the curve
// of alg, Ed25519 for EdDSA, RSA for RS256 and PS256) into a Key.
func ParseSoftwareKey(alg Algorithm, pkcs8 []byte) (Key, error) {
	k, err := x509.ParsePKCS8PrivateKey(pkcs8)
	if err != nil {
		return nil, fmt.Errorf("software key: parse: %w", err)
	}
	switch priv := k.(type) {
	case *ecdsa.PrivateKey:
		if c := curveOf(alg); c == nil || priv.Curve != c {
			return nil, fmt.Errorf("software key: %s key does not match algorithm %d", priv.Curve.Params().Name, alg)
		}
		return &softwareKey{alg: alg, priv: priv}, nil
	case *rsa.PrivateKey:
		if alg != AlgRS256 && alg != AlgPS256 {
			return nil, fmt.Errorf("software key: RSA key does not match algorithm %d", alg)
		}
		return &softwareKey{alg: alg, priv: priv}, nil
	case ed25519.PrivateKey:
		if alg != AlgEdDSA && alg != AlgEd25519 {
			return nil, fmt.Errorf("software key: Ed25519 key does not match algorithm %d", alg)
		}
		return &softwareKey{alg: alg, priv: priv}, nil
	}
	return nil, fmt.Errorf("software key: unsupported key type %T", k)
}

// curveOf is the curve of an ECDSA algorithm, nil for any other.
func curveOf(alg Algorithm) elliptic.Curve {
	switch alg {
	case AlgES256:
		return elliptic.P256()
	case AlgES384:
		return elliptic.P384()
	case AlgES512:
		return elliptic.P521()
	}
	return nil
}

// Digest is the hash an ECDSA algorithm signs (RFC 9053 section 2.1):
// SHA-256 for ES256, SHA-384 for ES384, SHA-512 for ES512.
func Digest(alg Algorithm, message []byte) []byte {
	switch alg {
	case AlgES384:
		h := sha512.Sum384(message)
		return h[:]
	case AlgES512:
		h := sha512.Sum512(message)
		return h[:]
	}
	h := sha256.Sum256(message)
	return h[:]
}

type softwareKey struct {
	alg  Algorithm
	priv crypto.Signer
}

func (k *softwareKey) Algorithm() Algorithm     { return k.alg }
func (k *softwareKey) Public() crypto.PublicKey { return k.priv.Public() }

func (k *softwareKey) Sign(message []byte) ([]byte, error) {
	switch priv := k.priv.(type) {
	case *ecdsa.PrivateKey:
		return ecdsa.SignASN1(rand.Reader, priv, Digest(k.alg, message))
	case *rsa.PrivateKey:
		h := sha256.Sum256(message)
		if k.alg == AlgPS256 {
			// RFC 8230 section 2: the salt is as long as the hash.
			return rsa.SignPSS(rand.Reader, priv, crypto.SHA256, h[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		}
		return rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, h[:])
	case ed25519.PrivateKey:
		return ed25519.Sign(priv, message), nil
	}
	return nil, fmt.Errorf("software key: unsupported key type %T", k.priv)
}

var _ KeyProvider = Software{}
