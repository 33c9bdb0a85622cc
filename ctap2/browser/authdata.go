package browser

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"

	"github.com/fxamacker/cbor/v2"
	"github.com/vkey-dev/vkey/ctap2"
)

// Authenticator data flags (WebAuthn L3 section 6.1).
const (
	flagUP = 0x01
	flagUV = 0x04
	flagAT = 0x40
	flagED = 0x80
)

// authData is parsed authenticator data (WebAuthn L3 section 6.1).
type authData struct {
	raw        []byte
	flags      byte
	credID     []byte
	coseKey    []byte // the credential public key as COSE_Key CBOR
	aaguidAt   int    // offset of the AAGUID in raw, 0 without attested data
	extensions map[string]cbor.RawMessage
}

// parseAuthData splits authenticator data into its parts.
func parseAuthData(raw []byte) (*authData, error) {
	if len(raw) < 37 {
		return nil, errors.New("authenticator data shorter than 37 bytes")
	}
	ad := &authData{raw: raw, flags: raw[32]}
	rest := raw[37:]
	if ad.flags&flagAT != 0 {
		if len(rest) < 18 {
			return nil, errors.New("attested credential data truncated")
		}
		ad.aaguidAt = 37
		n := int(rest[16])<<8 | int(rest[17])
		if len(rest) < 18+n {
			return nil, errors.New("credential ID truncated")
		}
		ad.credID = rest[18 : 18+n]
		var key cbor.RawMessage
		after, err := cbor.UnmarshalFirst(rest[18+n:], &key)
		if err != nil {
			return nil, fmt.Errorf("credential public key: %w", err)
		}
		ad.coseKey = key
		rest = after
	}
	if ad.flags&flagED != 0 {
		if err := ctap2.Unmarshal(rest, &ad.extensions); err != nil {
			return nil, fmt.Errorf("authenticator extension outputs: %w", err)
		}
	}
	return ad, nil
}

// publicKeyInfo returns the credential public key as SubjectPublicKeyInfo
// DER and its COSE algorithm (getPublicKey() and getPublicKeyAlgorithm(),
// WebAuthn L3 section 5.2.1.1); a key of another kind gives a nil DER, as
// the spec allows.
func publicKeyInfo(raw []byte) ([]byte, int64, error) {
	var hdr struct {
		Kty int64 `cbor:"1,keyasint"`
		Alg int64 `cbor:"3,keyasint"`
	}
	if err := cbor.Unmarshal(raw, &hdr); err != nil {
		return nil, 0, fmt.Errorf("credential public key: %w", err)
	}
	var pub any
	switch hdr.Kty {
	case 2: // EC2
		var k struct {
			Crv int64  `cbor:"-1,keyasint"`
			X   []byte `cbor:"-2,keyasint"`
			Y   []byte `cbor:"-3,keyasint"`
		}
		if err := cbor.Unmarshal(raw, &k); err != nil {
			return nil, 0, err
		}
		curve := map[int64]elliptic.Curve{1: elliptic.P256(), 2: elliptic.P384(), 3: elliptic.P521()}[k.Crv]
		if curve == nil {
			return nil, hdr.Alg, nil
		}
		size := (curve.Params().BitSize + 7) / 8
		if len(k.X) != size || len(k.Y) != size {
			return nil, hdr.Alg, nil
		}
		ec, err := ecdsa.ParseUncompressedPublicKey(curve, append(append([]byte{4}, k.X...), k.Y...))
		if err != nil {
			return nil, hdr.Alg, nil
		}
		pub = ec
	case 1: // OKP
		var k struct {
			Crv int64  `cbor:"-1,keyasint"`
			X   []byte `cbor:"-2,keyasint"`
		}
		if err := cbor.Unmarshal(raw, &k); err != nil {
			return nil, 0, err
		}
		if k.Crv != 6 || len(k.X) != ed25519.PublicKeySize {
			return nil, hdr.Alg, nil
		}
		pub = ed25519.PublicKey(k.X)
	case 3: // RSA
		var k struct {
			N []byte `cbor:"-1,keyasint"`
			E []byte `cbor:"-2,keyasint"`
		}
		if err := cbor.Unmarshal(raw, &k); err != nil {
			return nil, 0, err
		}
		pub = &rsa.PublicKey{N: new(big.Int).SetBytes(k.N), E: int(new(big.Int).SetBytes(k.E).Int64())}
	default:
		return nil, hdr.Alg, nil
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, hdr.Alg, nil
	}
	return der, hdr.Alg, nil
}
