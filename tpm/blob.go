package tpm

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"slices"

	"github.com/google/go-tpm/tpm2"
	"github.com/vkey-dev/vkey/keystore"
)

// blobVersion is the first byte of every blob this package makes.
const blobVersion = 1

// Blob kinds (second byte).
const (
	kindSigningKey byte = 1 // credential signing key (ECC or RSA)
	kindSealed     byte = 2 // sealed data object (keyedHash)
)

// blob is a TPM object wrapped under the storage primary key.
//
// Serialized form (version 1), all lengths big-endian uint16:
//
//	version(1) kind(1)
//	len(parentName) parentName   Name of the SRK it was created under
//	len(public)     public       TPMT_PUBLIC (the TPM2B_PUBLIC contents)
//	len(private)    private      TPM2B_PRIVATE contents (wrapped by the SRK)
//
// The parent Name (nameAlg || SHA-256 of the SRK's public area) identifies
// the TPM's owner seed, so a blob from another TPM is refused before it is
// sent to this one. The blob is secret only in the sense that it names the
// key; the private part is already encrypted by the TPM.
type blob struct {
	kind       byte
	parentName []byte
	public     []byte
	private    []byte
}

// marshal serializes b.
func (b *blob) marshal() []byte {
	out := make([]byte, 0, 2+6+len(b.parentName)+len(b.public)+len(b.private))
	out = append(out, blobVersion, b.kind)
	for _, f := range [][]byte{b.parentName, b.public, b.private} {
		out = binary.BigEndian.AppendUint16(out, uint16(len(f)))
		out = append(out, f...)
	}
	return out
}

// parseBlob reads a blob of the given kind; it never panics on bad input.
func parseBlob(data []byte, kind byte) (*blob, error) {
	if len(data) < 2 {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadBlob, len(data))
	}
	if data[0] != blobVersion {
		return nil, fmt.Errorf("%w: unknown version %d", ErrBadBlob, data[0])
	}
	if data[1] != kind {
		return nil, fmt.Errorf("%w: kind %d, want %d", ErrBadBlob, data[1], kind)
	}
	b := &blob{kind: kind}
	rest := data[2:]
	for _, f := range []*[]byte{&b.parentName, &b.public, &b.private} {
		if len(rest) < 2 {
			return nil, fmt.Errorf("%w: truncated", ErrBadBlob)
		}
		n := int(binary.BigEndian.Uint16(rest))
		rest = rest[2:]
		if len(rest) < n {
			return nil, fmt.Errorf("%w: truncated", ErrBadBlob)
		}
		*f = append([]byte(nil), rest[:n]...)
		rest = rest[n:]
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrBadBlob, len(rest))
	}
	if len(b.public) == 0 || len(b.private) == 0 || len(b.parentName) == 0 {
		return nil, fmt.Errorf("%w: empty field", ErrBadBlob)
	}
	return b, nil
}

// unmarshalPublic decodes a TPMT_PUBLIC without letting a malformed input
// panic the caller.
func unmarshalPublic(pubArea []byte) (pub *tpm2.TPMTPublic, err error) {
	defer func() {
		if r := recover(); r != nil {
			pub, err = nil, fmt.Errorf("%w: public area: %v", ErrBadBlob, r)
		}
	}()
	pub, err = tpm2.Unmarshal[tpm2.TPMTPublic](pubArea)
	if err != nil {
		return nil, fmt.Errorf("%w: public area: %w", ErrBadBlob, err)
	}
	return pub, nil
}

// templatePrefix is the encoding of template t up to its unique field
// (two coordinates of size bytes): a public area the TPM made from t starts
// with exactly these bytes (TPM2_Create copies the template and fills in
// unique).
func templatePrefix(t tpm2.TPMTPublic, size int) []byte {
	b := tpm2.Marshal(t)
	return b[:len(b)-2*(2+size)]
}

// credentialKeyShape is one kind of credential key Load accepts: the
// templatePrefix of each template it was ever made with, how its unique
// field reads, and the algorithms it signs with.
type credentialKeyShape struct {
	prefixes [][]byte
	// unique reads the public key from what follows the prefix.
	unique func(rest []byte) (crypto.PublicKey, error)
	// algs are the COSE algorithms of keys of this shape.
	algs []keystore.Algorithm
}

// credentialKeyShapes are the credential keys Generate makes, and the
// older templates Load still accepts: ES256 on P-256 and ES384 on P-384
// (TPM_ALG_NULL scheme, or the ECDSA scheme of keys made before it), ES512
// on P-521, and RS256/PS256 on RSA-2048 (one key shape serves both: the
// key names no scheme and each TPM2_Sign names its own).
var credentialKeyShapes = []credentialKeyShape{
	{
		prefixes: [][]byte{templatePrefix(credentialKeyTemplate(), 32), templatePrefix(legacyCredentialKeyTemplate(), 32)},
		unique:   func(rest []byte) (crypto.PublicKey, error) { return eccUnique(elliptic.P256(), rest) },
		algs:     []keystore.Algorithm{keystore.AlgES256},
	},
	{
		prefixes: [][]byte{templatePrefix(credentialKeyTemplateFor(keystore.AlgES384), 48), templatePrefix(legacyCredentialKeyTemplateP384(), 48)},
		unique:   func(rest []byte) (crypto.PublicKey, error) { return eccUnique(elliptic.P384(), rest) },
		algs:     []keystore.Algorithm{keystore.AlgES384},
	},
	{
		prefixes: [][]byte{templatePrefix(credentialKeyTemplateFor(keystore.AlgES512), 66)},
		unique:   func(rest []byte) (crypto.PublicKey, error) { return eccUnique(elliptic.P521(), rest) },
		algs:     []keystore.Algorithm{keystore.AlgES512},
	},
	{
		prefixes: [][]byte{rsaTemplatePrefix(credentialKeyTemplateFor(keystore.AlgRS256))},
		unique:   rsaUnique,
		algs:     []keystore.Algorithm{keystore.AlgRS256, keystore.AlgPS256},
	},
}

// rsaTemplatePrefix is templatePrefix for an RSA template, whose unique
// field (the modulus) is empty in the template.
func rsaTemplatePrefix(t tpm2.TPMTPublic) []byte {
	b := tpm2.Marshal(t)
	return b[:len(b)-2]
}

// matchPrefix returns what follows the first of prefixes that b starts
// with, and whether one did.
func matchPrefix(b []byte, prefixes [][]byte) ([]byte, bool) {
	for _, p := range prefixes {
		if bytes.HasPrefix(b, p) {
			return b[len(p):], true
		}
	}
	return nil, false
}

// credentialKeyPublic checks that pubArea is that of a non-exportable
// credential key as Generate makes them (one of the exact templates:
// fixedTPM, fixedParent, sensitiveDataOrigin, sign) and returns its public
// key and the algorithms it signs with. It compares bytes instead of
// decoding the structure, which keeps Load cheap.
func credentialKeyPublic(pubArea []byte) (crypto.PublicKey, []keystore.Algorithm, error) {
	for _, s := range credentialKeyShapes {
		if rest, ok := matchPrefix(pubArea, s.prefixes); ok {
			pub, err := s.unique(rest)
			return pub, s.algs, err
		}
	}
	return nil, nil, fmt.Errorf("%w: public area is not that of a vkey credential key", ErrBadBlob)
}

// signingKeyPublic is credentialKeyPublic for an ES256 (P-256) key.
func signingKeyPublic(pubArea []byte) (*ecdsa.PublicKey, error) {
	pub, algs, err := credentialKeyPublic(pubArea)
	if err != nil {
		return nil, err
	}
	if !slices.Equal(algs, []keystore.Algorithm{keystore.AlgES256}) {
		return nil, fmt.Errorf("%w: not a P-256 key", ErrBadBlob)
	}
	return pub.(*ecdsa.PublicKey), nil
}

// eccUnique reads a TPMS_ECC_POINT (two TPM2B coordinates, nothing after
// them) as a point on curve, checking that it is on the curve.
func eccUnique(curve elliptic.Curve, rest []byte) (*ecdsa.PublicKey, error) {
	size := (curve.Params().BitSize + 7) / 8
	var xy [2][]byte
	for i := range xy {
		if len(rest) < 2 {
			return nil, fmt.Errorf("%w: public area truncated", ErrBadBlob)
		}
		n := int(binary.BigEndian.Uint16(rest))
		if n > size || len(rest) < 2+n {
			return nil, fmt.Errorf("%w: bad ECC coordinate", ErrBadBlob)
		}
		xy[i], rest = rest[2:2+n], rest[2+n:]
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes in public area", ErrBadBlob, len(rest))
	}
	return eccPoint(curve, xy[0], xy[1])
}

// rsaUnique reads a TPM2B_PUBLIC_KEY_RSA as the modulus of an RSA-2048
// key with the template's exponent (0, which means 2^16+1: TPM 2.0 Part 2
// section 12.2.3.5).
func rsaUnique(rest []byte) (crypto.PublicKey, error) {
	if len(rest) != 2+rsaKeyBytes || int(binary.BigEndian.Uint16(rest)) != rsaKeyBytes {
		return nil, fmt.Errorf("%w: RSA modulus is not %d bytes", ErrBadBlob, rsaKeyBytes)
	}
	n := new(big.Int).SetBytes(rest[2:])
	if n.BitLen() != keystore.RSAKeyBits || n.Bit(0) == 0 {
		return nil, fmt.Errorf("%w: not an RSA-%d modulus", ErrBadBlob, keystore.RSAKeyBits)
	}
	return &rsa.PublicKey{N: n, E: rsaDefaultExponent}, nil
}

// rsaKeyBytes is the modulus size of RSA credential keys in bytes.
const rsaKeyBytes = keystore.RSAKeyBits / 8

// rsaDefaultExponent is the public exponent of a key whose template says 0.
const rsaDefaultExponent = 1<<16 + 1

// eccPublic converts the unique field of an ECC P-256 public area into an
// *ecdsa.PublicKey, checking that the point is on the curve.
func eccPublic(pub *tpm2.TPMTPublic) (*ecdsa.PublicKey, error) {
	parms, err := pub.Parameters.ECCDetail()
	if err != nil {
		return nil, fmt.Errorf("%w: ECC parameters: %w", ErrBadBlob, err)
	}
	if parms.CurveID != tpm2.TPMECCNistP256 {
		return nil, fmt.Errorf("%w: curve 0x%04x is not P-256", ErrBadBlob, uint16(parms.CurveID))
	}
	pt, err := pub.Unique.ECC()
	if err != nil {
		return nil, fmt.Errorf("%w: ECC point: %w", ErrBadBlob, err)
	}
	return eccPoint(elliptic.P256(), pt.X.Buffer, pt.Y.Buffer)
}

// eccPoint makes an *ecdsa.PublicKey on curve of big-endian coordinates,
// checking that the point is on the curve.
func eccPoint(curve elliptic.Curve, x, y []byte) (*ecdsa.PublicKey, error) {
	size := (curve.Params().BitSize + 7) / 8
	if len(x) > size || len(y) > size {
		return nil, fmt.Errorf("%w: ECC point too long", ErrBadBlob)
	}
	raw := make([]byte, 1+2*size)
	raw[0] = 4
	copy(raw[1+size-len(x):1+size], x)
	copy(raw[1+2*size-len(y):], y)
	k, err := ecdsa.ParseUncompressedPublicKey(curve, raw)
	if err != nil {
		return nil, fmt.Errorf("%w: ECC point: %w", ErrBadBlob, err)
	}
	return k, nil
}

// sealedPublic checks that pubArea is a sealed data object as Seal makes them.
func sealedPublic(pubArea []byte) error {
	pub, err := unmarshalPublic(pubArea)
	if err != nil {
		return err
	}
	a := pub.ObjectAttributes
	if pub.Type != tpm2.TPMAlgKeyedHash || pub.NameAlg != tpm2.TPMAlgSHA256 {
		return fmt.Errorf("%w: not a sealed data object", ErrBadBlob)
	}
	if !a.FixedTPM || !a.FixedParent || a.SignEncrypt || a.Decrypt || a.SensitiveDataOrigin {
		return fmt.Errorf("%w: sealed object attributes", ErrBadBlob)
	}
	return nil
}

// checkParent refuses a blob made under another storage key. Callers hold tp.mu.
func (tp *TPM) checkParent(b *blob) error {
	if string(b.parentName) != string(tp.srkName.Buffer) {
		return fmt.Errorf("%w: it was made under another storage key (another TPM, or this TPM was cleared)", ErrForeignBlob)
	}
	return nil
}

// loadBlob loads a wrapped object under the SRK; the caller flushes the
// returned handle. Callers hold tp.mu.
func (tp *TPM) loadBlob(b *blob) (*tpm2.LoadResponse, error) {
	t, err := tp.conn()
	if err != nil {
		return nil, err
	}
	if err := tp.checkParent(b); err != nil {
		return nil, err
	}
	rsp, err := tpm2.Load{
		ParentHandle: tp.srkAuth(),
		InPrivate:    tpm2.TPM2BPrivate{Buffer: b.private},
		InPublic:     tpm2.BytesAs2B[tpm2.TPMTPublic](b.public),
	}.Execute(t)
	if err != nil {
		if errors.Is(err, tpm2.TPMRCIntegrity) || errors.Is(err, tpm2.TPMRCSize) || errors.Is(err, tpm2.TPMRCValue) {
			return nil, fmt.Errorf("%w: the TPM refused it (corrupted, or from another TPM): %w", ErrBadBlob, tp.wrap("load", err))
		}
		return nil, tp.wrap("load", err)
	}
	return rsp, nil
}
