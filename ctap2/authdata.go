package ctap2

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/big"

	"github.com/vkey-dev/vkey/keystore"
)

// Authenticator data flags (WebAuthn section 6.1).
const (
	flagUP byte = 0x01 // user present
	flagUV byte = 0x04 // user verified
	flagBE byte = 0x08 // backup eligible
	flagBS byte = 0x10 // backup state
	flagAT byte = 0x40 // attested credential data included
	flagED byte = 0x80 // extension data included
)

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }

// authData assembles authenticator data (WebAuthn section 6.1):
// rpIdHash || flags || signCount || [attestedCredentialData] || [extensions].
func authData(rpIDHash []byte, flags byte, signCount uint32, attested []byte, extensions []byte) []byte {
	if attested != nil {
		flags |= flagAT
	}
	if extensions != nil {
		flags |= flagED
	}
	out := make([]byte, 0, 37+len(attested)+len(extensions))
	out = append(out, rpIDHash...)
	out = append(out, flags)
	out = binary.BigEndian.AppendUint32(out, signCount)
	out = append(out, attested...)
	return append(out, extensions...)
}

// attestedCredentialData is aaguid || credentialIdLength || credentialId ||
// credentialPublicKey (WebAuthn section 6.5.1).
func attestedCredentialData(aaguid [16]byte, credID, coseKey []byte) []byte {
	out := make([]byte, 0, 18+len(credID)+len(coseKey))
	out = append(out, aaguid[:]...)
	out = binary.BigEndian.AppendUint16(out, uint16(len(credID)))
	out = append(out, credID...)
	return append(out, coseKey...)
}

// coseEC2Key is a COSE_Key of key type EC2 (RFC 9053 section 7.1).
type coseEC2Key struct {
	Kty int64  `cbor:"1,keyasint"`
	Alg int64  `cbor:"3,keyasint"`
	Crv int64  `cbor:"-1,keyasint"`
	X   []byte `cbor:"-2,keyasint"`
	Y   []byte `cbor:"-3,keyasint"`
}

// coseOKPKey is a COSE_Key of key type OKP (RFC 9053 section 7.2).
type coseOKPKey struct {
	Kty int64  `cbor:"1,keyasint"`
	Alg int64  `cbor:"3,keyasint"`
	Crv int64  `cbor:"-1,keyasint"`
	X   []byte `cbor:"-2,keyasint"`
}

// coseRSAKey is a COSE_Key of key type RSA (RFC 8230 section 4).
type coseRSAKey struct {
	Kty int64  `cbor:"1,keyasint"`
	Alg int64  `cbor:"3,keyasint"`
	N   []byte `cbor:"-1,keyasint"`
	E   []byte `cbor:"-2,keyasint"`
}

// coseCurves are the COSE curve identifiers of the EC2 curves (RFC 9053
// section 7.1, table 18).
var coseCurves = map[string]int64{"P-256": 1, "P-384": 2, "P-521": 3}

// encodeCOSEKey encodes pub as the COSE_Key of a credential using alg.
func encodeCOSEKey(alg keystore.Algorithm, pub any) ([]byte, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		crv, ok := coseCurves[k.Curve.Params().Name]
		point, err := k.Bytes()
		if err != nil || !ok {
			return nil, fmt.Errorf("encoding %s public key: %v", k.Curve.Params().Name, err)
		}
		// Uncompressed point 0x04 || x || y, each padded to the field size
		// as RFC 9053 section 7.1.1 requires.
		n := (len(point) - 1) / 2
		return Marshal(coseEC2Key{Kty: 2, Alg: int64(alg), Crv: crv, X: point[1 : 1+n], Y: point[1+n:]})
	case *rsa.PublicKey:
		// RFC 8230 section 4: n and e as unsigned big-endian integers
		// without leading zero bytes.
		return Marshal(coseRSAKey{Kty: 3, Alg: int64(alg), N: k.N.Bytes(), E: big.NewInt(int64(k.E)).Bytes()})
	case ed25519.PublicKey:
		return Marshal(coseOKPKey{Kty: 1, Alg: int64(alg), Crv: 6, X: []byte(k)})
	}
	return nil, fmt.Errorf("unsupported public key type %T", pub)
}

// credentialFlags are the BE/BS flags of a credential (WebAuthn section 6.1).
func credentialFlags(c *keystore.Credential) byte {
	var f byte
	if c.BackupEligible {
		f |= flagBE
		if c.BackupState {
			f |= flagBS
		}
	}
	return f
}
