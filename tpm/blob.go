package tpm

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"
	"github.com/vkey-dev/vkey/keystore"
)

// blobVersion is the first byte of every blob this package makes.
const blobVersion = 1

// Blob kinds (second byte).
const (
	kindSigningKey byte = 1 // ECC P-256 ECDSA-SHA256 signing key
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

// signingKeyPrefixes are the templatePrefix of the ES256 (P-256)
// credential key templates Load accepts: the current one (TPM_ALG_NULL
// scheme) and the one of keys made before it (ECDSA-SHA256 scheme).
var signingKeyPrefixes = [][]byte{
	templatePrefix(credentialKeyTemplate(), 32),
	templatePrefix(legacyCredentialKeyTemplate(), 32),
}

// signingKeyPrefixesP384 are signingKeyPrefixes of the ES384 (P-384)
// templates.
var signingKeyPrefixesP384 = [][]byte{
	templatePrefix(credentialKeyTemplateFor(keystore.AlgES384), 48),
	templatePrefix(legacyCredentialKeyTemplateP384(), 48),
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

// signingKeyPublicAlg is signingKeyPublic for either template (ES256 on
// P-256, ES384 on P-384); it also says which.
func signingKeyPublicAlg(pubArea []byte) (*ecdsa.PublicKey, keystore.Algorithm, error) {
	rest, ok := matchPrefix(pubArea, signingKeyPrefixesP384)
	if !ok {
		pub, err := signingKeyPublic(pubArea)
		return pub, keystore.AlgES256, err
	}
	var xy [2][]byte
	for i := range xy {
		if len(rest) < 2 {
			return nil, 0, fmt.Errorf("%w: public area truncated", ErrBadBlob)
		}
		n := int(binary.BigEndian.Uint16(rest))
		if n > 48 || len(rest) < 2+n {
			return nil, 0, fmt.Errorf("%w: bad ECC coordinate", ErrBadBlob)
		}
		xy[i], rest = rest[2:2+n], rest[2+n:]
	}
	if len(rest) != 0 {
		return nil, 0, fmt.Errorf("%w: %d trailing bytes in public area", ErrBadBlob, len(rest))
	}
	raw := make([]byte, 97)
	raw[0] = 4
	copy(raw[1+48-len(xy[0]):49], xy[0])
	copy(raw[49+48-len(xy[1]):], xy[1])
	k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P384(), raw)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: ECC point: %w", ErrBadBlob, err)
	}
	return k, keystore.AlgES384, nil
}

// signingKeyPublic checks that pubArea is a non-exportable ECC P-256 signing
// key as Generate makes them (one of the exact templates: fixedTPM,
// fixedParent, sensitiveDataOrigin, sign; NULL or ECDSA-SHA256 scheme) and
// returns its public key. It compares bytes instead of decoding the
// structure, which keeps Load cheap.
func signingKeyPublic(pubArea []byte) (*ecdsa.PublicKey, error) {
	rest, ok := matchPrefix(pubArea, signingKeyPrefixes)
	if !ok {
		return nil, fmt.Errorf("%w: public area is not that of a vkey credential key", ErrBadBlob)
	}
	var xy [2][]byte
	for i := range xy {
		if len(rest) < 2 {
			return nil, fmt.Errorf("%w: public area truncated", ErrBadBlob)
		}
		n := int(binary.BigEndian.Uint16(rest))
		if n > 32 || len(rest) < 2+n {
			return nil, fmt.Errorf("%w: bad ECC coordinate", ErrBadBlob)
		}
		xy[i], rest = rest[2:2+n], rest[2+n:]
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes in public area", ErrBadBlob, len(rest))
	}
	return p256Point(xy[0], xy[1])
}

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
	return p256Point(pt.X.Buffer, pt.Y.Buffer)
}

// p256Point makes an *ecdsa.PublicKey of big-endian coordinates, checking
// that the point is on the curve.
func p256Point(x, y []byte) (*ecdsa.PublicKey, error) {
	if len(x) > 32 || len(y) > 32 {
		return nil, fmt.Errorf("%w: ECC point too long", ErrBadBlob)
	}
	raw := make([]byte, 65)
	raw[0] = 4
	copy(raw[1+32-len(x):33], x)
	copy(raw[33+32-len(y):], y)
	k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
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
