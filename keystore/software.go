package keystore

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
)

// SoftwareProviderName is the Provider recorded for software keys.
const SoftwareProviderName = "software"

// Software is the KeyProvider of software keys: ES256 (P-256) and EdDSA
// (Ed25519). Its blobs are PKCS#8 private keys, which the caller must keep
// secret.
type Software struct{}

// Name implements KeyProvider.
func (Software) Name() string { return SoftwareProviderName }

// Supports implements KeyProvider.
func (Software) Supports(alg Algorithm) bool {
	switch alg {
	case AlgES256, AlgEdDSA, AlgEd25519:
		return true
	}
	return false
}

// Generate implements KeyProvider.
func (s Software) Generate(alg Algorithm) ([]byte, Key, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case AlgES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
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

// ParseSoftwareKey parses a PKCS#8 private key (P-256 ECDSA for ES256,
// Ed25519 for EdDSA) into a Key.
func ParseSoftwareKey(alg Algorithm, pkcs8 []byte) (Key, error) {
	k, err := x509.ParsePKCS8PrivateKey(pkcs8)
	if err != nil {
		return nil, fmt.Errorf("software key: parse: %w", err)
	}
	switch priv := k.(type) {
	case *ecdsa.PrivateKey:
		if alg != AlgES256 || priv.Curve != elliptic.P256() {
			return nil, fmt.Errorf("software key: P-256 key does not match algorithm %d", alg)
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

type softwareKey struct {
	alg  Algorithm
	priv crypto.Signer
}

func (k *softwareKey) Algorithm() Algorithm     { return k.alg }
func (k *softwareKey) Public() crypto.PublicKey { return k.priv.Public() }

func (k *softwareKey) Sign(message []byte) ([]byte, error) {
	switch priv := k.priv.(type) {
	case *ecdsa.PrivateKey:
		h := sha256.Sum256(message)
		return ecdsa.SignASN1(rand.Reader, priv, h[:])
	case ed25519.PrivateKey:
		return ed25519.Sign(priv, message), nil
	}
	return nil, fmt.Errorf("software key: unsupported key type %T", k.priv)
}

var _ KeyProvider = Software{}
