package tpm

import (
	"crypto"
	"crypto/rsa"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"slices"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/vkey-dev/vkey/keystore"
)

// ProviderName is the keystore.KeyProvider name of TPM keys.
const ProviderName = "tpm"

// eccSigScheme is ECDSA with SHA-256, the scheme of credential keys and the AIK.
var eccSigScheme = tpm2.TPMTECCScheme{
	Scheme:  tpm2.TPMAlgECDSA,
	Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA256}),
}

// sigSchemeECDSA is the same scheme as a TPMT_SIG_SCHEME for Sign/Certify.
var sigSchemeECDSA = tpm2.TPMTSigScheme{
	Scheme:  tpm2.TPMAlgECDSA,
	Details: tpm2.NewTPMUSigScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSchemeHash{HashAlg: tpm2.TPMAlgSHA256}),
}

// nullECCScheme is TPM_ALG_NULL as a TPMT_ECC_SCHEME: a key that names no
// scheme, signing with the one each TPM2_Sign gives (sigSchemeFor).
var nullECCScheme = tpm2.TPMTECCScheme{Scheme: tpm2.TPMAlgNull}

// credentialKeyTemplate is the template of credential keys: an unrestricted
// ECC P-256 signing key that cannot leave this TPM
// (fixedTPM|fixedParent|sensitiveDataOrigin), usable with an empty password
// (userWithAuth) and exempt from dictionary-attack lockout (noDA).
//
// Its scheme is TPM_ALG_NULL (allowed for an unrestricted signing key, TPM
// 2.0 Part 2 section 12.2.3.6); every TPM2_Sign names ECDSA-SHA256. The
// tpm attestation statement carries this public area (WebAuthn section
// 8.3), and relying-party libraries parse TPMS_ECC_PARMS.scheme as a bare
// TPM_ALG_NULL, as Windows Hello's TPM keys have it: python-fido2 rejects
// another scheme ("scheme is expected to be NULL") and
// @simplewebauthn/server misreads the scheme's hashAlg as the curve.
func credentialKeyTemplate() tpm2.TPMTPublic {
	return eccSigningTemplate(tpm2.TPMECCNistP256, 32, nullECCScheme)
}

// legacyCredentialKeyTemplate is credentialKeyTemplate with the
// ECDSA-SHA256 scheme in the key, as vkey made credential keys before; Load
// still accepts their blobs.
func legacyCredentialKeyTemplate() tpm2.TPMTPublic {
	return eccSigningTemplate(tpm2.TPMECCNistP256, 32, eccSigScheme)
}

// credentialKeyAttributes are the attributes of every credential key:
// non-exportable (fixedTPM|fixedParent|sensitiveDataOrigin), usable with an
// empty password (userWithAuth), exempt from dictionary-attack lockout
// (noDA), unrestricted signing.
var credentialKeyAttributes = tpm2.TPMAObject{
	FixedTPM:            true,
	FixedParent:         true,
	SensitiveDataOrigin: true,
	UserWithAuth:        true,
	NoDA:                true,
	SignEncrypt:         true,
}

// eccSigningTemplate is the template of a non-exportable ECC signing key on
// curve (coordinates of size bytes) with scheme.
func eccSigningTemplate(curve tpm2.TPMECCCurve, size int, scheme tpm2.TPMTECCScheme) tpm2.TPMTPublic {
	return tpm2.TPMTPublic{
		Type:             tpm2.TPMAlgECC,
		NameAlg:          tpm2.TPMAlgSHA256,
		ObjectAttributes: credentialKeyAttributes,
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
			Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
			Scheme:    scheme,
			CurveID:   curve,
			KDF:       tpm2.TPMTKDFScheme{Scheme: tpm2.TPMAlgNull},
		}),
		Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
			X: tpm2.TPM2BECCParameter{Buffer: make([]byte, size)},
			Y: tpm2.TPM2BECCParameter{Buffer: make([]byte, size)},
		}),
	}
}

// credentialKeyTemplateFor is the credential key template of alg: ES256
// on P-256 (credentialKeyTemplate); ES384 and ES512, the same on P-384 and
// P-521 (issue 13: where the TPM offers the curve); RS256 and PS256 on
// RSA-2048 (rsaCredentialKeyTemplate). All name no scheme (TPM_ALG_NULL).
func credentialKeyTemplateFor(alg keystore.Algorithm) tpm2.TPMTPublic {
	switch alg {
	case keystore.AlgES384:
		return eccSigningTemplate(tpm2.TPMECCNistP384, 48, nullECCScheme)
	case keystore.AlgES512:
		return eccSigningTemplate(tpm2.TPMECCNistP521, 66, nullECCScheme)
	case keystore.AlgRS256, keystore.AlgPS256:
		return rsaCredentialKeyTemplate()
	}
	return credentialKeyTemplate()
}

// rsaCredentialKeyTemplate is the template of RSA credential keys: an
// unrestricted RSA-2048 signing key with the attributes of
// credentialKeyTemplate, the default exponent 2^16+1 (0 in the template,
// TPM 2.0 Part 2 section 12.2.3.5) and no scheme (TPM_ALG_NULL), so one
// key shape serves RS256 (each TPM2_Sign names RSASSA-SHA256) and PS256
// (RSAPSS-SHA256). As for the ECC keys, relying-party parsers of the tpm
// statement's pubArea read TPMS_RSA_PARMS.scheme as a bare algorithm ID
// with no details: python-fido2 and @simplewebauthn/server read keyBits
// and exponent right after it, so a named scheme would be misread.
func rsaCredentialKeyTemplate() tpm2.TPMTPublic {
	return tpm2.TPMTPublic{
		Type:             tpm2.TPMAlgRSA,
		NameAlg:          tpm2.TPMAlgSHA256,
		ObjectAttributes: credentialKeyAttributes,
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgRSA, &tpm2.TPMSRSAParms{
			Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
			Scheme:    tpm2.TPMTRSAScheme{Scheme: tpm2.TPMAlgNull},
			KeyBits:   keystore.RSAKeyBits,
		}),
		Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgRSA, &tpm2.TPM2BPublicKeyRSA{}),
	}
}

// legacyCredentialKeyTemplateP384 is the ES384 template with the
// ECDSA-SHA384 scheme in the key, as vkey made them before.
func legacyCredentialKeyTemplateP384() tpm2.TPMTPublic {
	return eccSigningTemplate(tpm2.TPMECCNistP384, 48, tpm2.TPMTECCScheme{
		Scheme:  tpm2.TPMAlgECDSA,
		Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA384}),
	})
}

// sigSchemeFor is the TPMT_SIG_SCHEME that signs for alg: ECDSA with
// the hash of ES256, ES384 or ES512 (keystore.Digest), RSASSA-PKCS1-v1_5
// with SHA-256 for RS256 and RSASSA-PSS with SHA-256 for PS256 (RFC 8230
// section 2). A TPM's PSS salt is as long as the digest when the key is
// large enough (TPM 2.0 Part 1 section B.7, 32 bytes for RSA-2048 and
// SHA-256), which is the salt length RFC 8230 gives PS256.
func sigSchemeFor(alg keystore.Algorithm) tpm2.TPMTSigScheme {
	scheme, hash := tpm2.TPMAlgECDSA, tpm2.TPMAlgSHA256
	switch alg {
	case keystore.AlgES384:
		hash = tpm2.TPMAlgSHA384
	case keystore.AlgES512:
		hash = tpm2.TPMAlgSHA512
	case keystore.AlgRS256:
		scheme = tpm2.TPMAlgRSASSA
	case keystore.AlgPS256:
		scheme = tpm2.TPMAlgRSAPSS
	}
	return tpm2.TPMTSigScheme{
		Scheme:  scheme,
		Details: tpm2.NewTPMUSigScheme(scheme, &tpm2.TPMSSchemeHash{HashAlg: hash}),
	}
}

// aikTemplate is the attestation identity key: a restricted ECC P-256
// ECDSA-SHA256 signing key, derived as a primary key in the endorsement
// hierarchy, so the same TPM always gives the same AIK without storing it.
// Being restricted, it only signs TPM-generated structures (TPMS_ATTEST),
// which is what makes TPM2_Certify evidence (TPM 2.0 Part 1, section 25.2).
//
// A restricted signing key names its scheme (TPM 2.0 Part 2 section
// 12.2.3.6), so it keeps ECDSA-SHA256; the template is unchanged, so the
// AIK (and its certificate) stays the same on a given TPM.
func aikTemplate() tpm2.TPMTPublic {
	t := legacyCredentialKeyTemplate()
	t.ObjectAttributes.Restricted = true
	return t
}

// KeyProvider returns the keystore.KeyProvider of TPM-resident credential
// keys.
func (tp *TPM) KeyProvider() keystore.KeyProvider { return provider{tp} }

// provider implements keystore.KeyProvider.
type provider struct{ tp *TPM }

// Name implements keystore.KeyProvider.
func (provider) Name() string { return ProviderName }

// Supports implements keystore.KeyProvider: ES256 (the TPM's ECC P-256),
// ES384 and ES512 where the TPM has P-384 and P-521, and RS256 and PS256
// where it has RSA-2048 with both signature schemes (issue 13; PS256 only
// if its PSS salt is the digest length, pssSaltOK). A wrapped
// RSA-2048 blob is about 540 bytes, longer than a credential ID may be
// (maxCredentialIdLength), so the authenticator keeps such a blob in its
// encrypted store and the ID only names it.
func (p provider) Supports(alg keystore.Algorithm) bool {
	switch alg {
	case keystore.AlgES256:
		return true
	case keystore.AlgES384:
		return p.tp.capabilities().hasCurve(tpm2.TPMECCNistP384)
	case keystore.AlgES512:
		return p.tp.capabilities().hasCurve(tpm2.TPMECCNistP521)
	case keystore.AlgRS256:
		return p.tp.capabilities().rsa2048
	case keystore.AlgPS256:
		return p.tp.capabilities().rsa2048 && p.pssSaltOK()
	}
	return false
}

// errPSSSalt is checkPSSSalt's error: the TPM's PSS salt is not 32 bytes.
var errPSSSalt = errors.New("the TPM's PS256 signature does not use the 32-byte salt RFC 8230 requires")

// pssSaltOK reports whether the TPM's RSAPSS signatures have the salt
// PS256 needs (checkPSSSalt). TPM 2.0 Part 1 rev 01.38 section B.7 has a
// TPM use the longest salt the key allows, which strict relying parties
// refuse; libtpms (swtpm) and Windows' TPMs use the digest length. A
// throwaway key answers once, at the first PS256 key (one more key
// creation); on a TPM that fails, PS256 keys are software keys. A TPM
// error answers nothing: it is asked again next time, and Generate
// reports the error.
func (p provider) pssSaltOK() bool {
	tp := p.tp
	tp.mu.Lock()
	known := tp.pssSalt
	tp.mu.Unlock()
	if known != nil {
		return *known
	}
	_, k, err := p.generate(keystore.AlgPS256, rsaCredentialKeyTemplate())
	if err == nil {
		_, err = k.Sign([]byte("vkey: PS256 salt length probe"))
	}
	if err != nil && !errors.Is(err, errPSSSalt) {
		return true
	}
	ok := err == nil
	tp.mu.Lock()
	tp.pssSalt = &ok
	tp.mu.Unlock()
	return ok
}

// Generate implements keystore.KeyProvider with TPM2_Create under the SRK.
// An RSA key takes the TPM a prime search: from a fraction of a second
// (swtpm) to several seconds on hardware TPMs.
func (p provider) Generate(alg keystore.Algorithm) ([]byte, keystore.Key, error) {
	if !p.Supports(alg) {
		return nil, nil, fmt.Errorf("tpm: algorithm %d not supported by %s (ES256; ES384, ES512, RS256 and PS256 where it has P-384, P-521 and RSA-2048)", alg, p.tp.desc)
	}
	return p.generate(alg, credentialKeyTemplateFor(alg))
}

// generate makes a credential key of alg from template with TPM2_Create
// under the SRK and returns its blob and the key.
func (p provider) generate(alg keystore.Algorithm, template tpm2.TPMTPublic) ([]byte, keystore.Key, error) {
	tp := p.tp
	tp.mu.Lock()
	defer tp.mu.Unlock()
	t, err := tp.conn()
	if err != nil {
		return nil, nil, err
	}
	rsp, err := tpm2.Create{
		ParentHandle: tp.srkAuth(),
		InPublic:     tpm2.New2B(template),
	}.Execute(t)
	if err != nil {
		return nil, nil, tp.wrap("create credential key", err)
	}
	b := &blob{
		kind:       kindSigningKey,
		parentName: append([]byte(nil), tp.srkName.Buffer...),
		public:     append([]byte(nil), rsp.OutPublic.Bytes()...),
		private:    append([]byte(nil), rsp.OutPrivate.Buffer...),
	}
	k, err := tp.newKey(b, alg)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: created key: %w", tp.desc, err)
	}
	return b.marshal(), k, nil
}

// Load implements keystore.KeyProvider. It checks the blob, that it was
// made under this TPM's storage key and that it holds a key of alg; the
// TPM itself is used only by Sign and CertifyTPM.
func (p provider) Load(alg keystore.Algorithm, data []byte) (keystore.Key, error) {
	b, err := parseBlob(data, kindSigningKey)
	if err != nil {
		return nil, fmt.Errorf("tpm: load key: %w", err)
	}
	tp := p.tp
	tp.mu.Lock()
	defer tp.mu.Unlock()
	if _, err := tp.conn(); err != nil {
		return nil, err
	}
	if err := tp.checkParent(b); err != nil {
		return nil, fmt.Errorf("%s: load key: %w", tp.desc, err)
	}
	return tp.newKey(b, alg)
}

// newKey builds a Key of alg from a checked blob.
func (tp *TPM) newKey(b *blob, alg keystore.Algorithm) (*Key, error) {
	pub, algs, err := credentialKeyPublic(b.public)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(algs, alg) {
		return nil, fmt.Errorf("%w: a key for algorithms %v, not %d", ErrBadBlob, algs, alg)
	}
	return &Key{tp: tp, b: b, pub: pub, alg: alg}, nil
}

// tpmCapabilities is what credential keys the TPM can make.
type tpmCapabilities struct {
	curves  []tpm2.TPMECCCurve // TPM_CAP_ECC_CURVES
	rsa2048 bool               // RSA-2048 keys (TPM2_TestParms) with RSASSA and RSAPSS
}

// hasCurve reports whether the TPM implements curve.
func (c *tpmCapabilities) hasCurve(curve tpm2.TPMECCCurve) bool {
	return slices.Contains(c.curves, curve)
}

// capabilities asks the TPM once which curves and RSA sizes it offers
// (TPM2_GetCapability TPM_CAP_ECC_CURVES and TPM_CAP_ALGS, and
// TPM2_TestParms for RSA-2048, TPM 2.0 Part 3 section 10.3). A TPM that
// does not answer offers nothing beyond P-256.
func (tp *TPM) capabilities() *tpmCapabilities {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	if tp.caps != nil {
		return tp.caps
	}
	c := &tpmCapabilities{}
	t, err := tp.conn()
	if err != nil {
		return c // not remembered: a closed TPM answers nothing
	}
	if rsp, err := (tpm2.GetCapability{Capability: tpm2.TPMCapECCCurves, PropertyCount: 64}).Execute(t); err == nil {
		if curves, err := rsp.CapabilityData.Data.ECCCurves(); err == nil {
			c.curves = curves.ECCCurves
		}
	}
	_, err = tpm2.TestParms{Parameters: tpm2.TPMTPublicParms{
		Type:       tpm2.TPMAlgRSA,
		Parameters: rsaCredentialKeyTemplate().Parameters,
	}}.Execute(t)
	if err == nil {
		c.rsa2048 = tp.hasAlgs(t, tpm2.TPMAlgRSASSA, tpm2.TPMAlgRSAPSS)
	}
	tp.caps = c
	return c
}

// hasAlgs reports whether the TPM implements every one of algs
// (TPM_CAP_ALGS). Callers hold tp.mu.
func (tp *TPM) hasAlgs(t transport.TPM, algs ...tpm2.TPMAlgID) bool {
	for _, alg := range algs {
		rsp, err := tpm2.GetCapability{Capability: tpm2.TPMCapAlgs, Property: uint32(alg), PropertyCount: 1}.Execute(t)
		if err != nil {
			return false
		}
		got, err := rsp.CapabilityData.Data.Algorithms()
		if err != nil || len(got.AlgProperties) == 0 || got.AlgProperties[0].Alg != alg {
			return false
		}
	}
	return true
}

// Key is a credential key resident in the TPM. It implements keystore.Key
// and keystore.TPMKey. Each use loads it, uses it and flushes it.
type Key struct {
	tp  *TPM
	b   *blob
	pub crypto.PublicKey // *ecdsa.PublicKey or *rsa.PublicKey
	alg keystore.Algorithm
}

var _ keystore.TPMKey = (*Key)(nil)

// Algorithm implements keystore.Key.
func (k *Key) Algorithm() keystore.Algorithm { return k.alg }

// Public implements keystore.Key; it is an *ecdsa.PublicKey, or an
// *rsa.PublicKey for RS256 and PS256.
func (k *Key) Public() crypto.PublicKey { return k.pub }

// PubArea returns the key's TPMT_PUBLIC as the TPM encoded it.
func (k *Key) PubArea() []byte { return append([]byte(nil), k.b.public...) }

// Sign implements keystore.Key: TPM2_Load, TPM2_Sign of the digest of
// message (keystore.Digest) with the scheme of the key's algorithm
// (sigSchemeFor), TPM2_FlushContext. The result is what WebAuthn section
// 6.5.5 wants: an ASN.1 DER ECDSA signature, or the RSA signature's bytes.
func (k *Key) Sign(message []byte) ([]byte, error) {
	digest := keystore.Digest(k.alg, message)
	tp := k.tp
	tp.mu.Lock()
	defer tp.mu.Unlock()
	lr, err := tp.loadBlob(k.b)
	if err != nil {
		return nil, err
	}
	t := tp.t
	defer func() { _ = flush(t, lr.ObjectHandle) }()
	rsp, err := tpm2.Sign{
		KeyHandle:  tpm2.AuthHandle{Handle: lr.ObjectHandle, Name: lr.Name, Auth: tpm2.PasswordAuth(nil)},
		Digest:     tpm2.TPM2BDigest{Buffer: digest},
		InScheme:   sigSchemeFor(k.alg),
		Validation: tpm2.TPMTTKHashCheck{Tag: tpm2.TPMSTHashCheck, Hierarchy: tpm2.TPMRHNull},
	}.Execute(t)
	if err != nil {
		return nil, tp.wrap("sign", err)
	}
	sig, err := signatureBytes(&rsp.Signature, sigSchemeFor(k.alg).Scheme)
	if err == nil && k.alg == keystore.AlgPS256 {
		err = checkPSSSalt(k.pub.(*rsa.PublicKey), digest, sig)
	}
	return sig, err
}

// checkPSSSalt refuses a PSS signature whose salt is not as long as the
// digest, as RFC 8230 section 2 requires of PS256 (see pssSaltOK). It
// costs one public-key operation.
func checkPSSSalt(pub *rsa.PublicKey, digest, sig []byte) error {
	if err := rsa.VerifyPSS(pub, crypto.SHA256, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}); err != nil {
		return fmt.Errorf("tpm: %w: %w", errPSSSalt, err)
	}
	return nil
}

// signatureBytes encodes a TPMT_SIGNATURE of scheme as WebAuthn wants it:
// ECDSA as DER (derSignature), RSASSA and RSAPSS as the signature's bytes.
func signatureBytes(sig *tpm2.TPMTSignature, scheme tpm2.TPMAlgID) ([]byte, error) {
	if sig.SigAlg != scheme {
		return nil, fmt.Errorf("tpm: signature algorithm 0x%04x, want 0x%04x", uint16(sig.SigAlg), uint16(scheme))
	}
	var (
		rs  *tpm2.TPMSSignatureRSA
		err error
	)
	switch scheme {
	case tpm2.TPMAlgRSASSA:
		rs, err = sig.Signature.RSASSA()
	case tpm2.TPMAlgRSAPSS:
		rs, err = sig.Signature.RSAPSS()
	default:
		return derSignature(sig)
	}
	if err != nil {
		return nil, fmt.Errorf("tpm: signature: %w", err)
	}
	return append([]byte(nil), rs.Sig.Buffer...), nil
}

// derSignature encodes a TPMT_SIGNATURE (ECDSA) as ASN.1 DER
// Ecdsa-Sig-Value (RFC 3279 section 2.2.3), as WebAuthn section 6.5.5 needs.
func derSignature(sig *tpm2.TPMTSignature) ([]byte, error) {
	if sig.SigAlg != tpm2.TPMAlgECDSA {
		return nil, fmt.Errorf("tpm: signature algorithm 0x%04x, want ECDSA", uint16(sig.SigAlg))
	}
	e, err := sig.Signature.ECDSA()
	if err != nil {
		return nil, fmt.Errorf("tpm: signature: %w", err)
	}
	der, err := asn1.Marshal(struct{ R, S *big.Int }{
		new(big.Int).SetBytes(e.SignatureR.Buffer),
		new(big.Int).SetBytes(e.SignatureS.Buffer),
	})
	if err != nil {
		return nil, fmt.Errorf("tpm: encode signature: %w", err)
	}
	return der, nil
}

// CertifyTPM implements keystore.TPMKey: it loads the key and the AIK, and
// has the AIK certify the key with TPM2_Certify (qualifyingData becomes the
// TPMS_ATTEST extraData). This is the evidence of the WebAuthn "tpm"
// attestation statement (WebAuthn section 8.3): pubArea, certInfo and sig.
func (k *Key) CertifyTPM(qualifyingData []byte) (*keystore.TPMAttestation, error) {
	if len(qualifyingData) > 64 { // TPM2B_DATA holds at most sizeof(TPMT_HA)
		return nil, fmt.Errorf("tpm: qualifying data of %d bytes is too long", len(qualifyingData))
	}
	tp := k.tp
	tp.mu.Lock()
	defer tp.mu.Unlock()
	info, err := tp.readInfo()
	if err != nil {
		return nil, err
	}
	lr, err := tp.loadBlob(k.b)
	if err != nil {
		return nil, err
	}
	t := tp.t
	defer func() { _ = flush(t, lr.ObjectHandle) }()
	aik, err := tpm2.CreatePrimary{
		PrimaryHandle: tpm2.TPMRHEndorsement,
		InPublic:      tpm2.New2B(aikTemplate()),
	}.Execute(t)
	if err != nil {
		return nil, tp.wrap("create attestation key", err)
	}
	defer func() { _ = flush(t, aik.ObjectHandle) }()
	aikPub, err := aik.OutPublic.Contents()
	if err != nil {
		return nil, fmt.Errorf("%s: attestation key public area: %w", tp.desc, err)
	}
	aikKey, err := eccPublic(aikPub)
	if err != nil {
		return nil, fmt.Errorf("%s: attestation key: %w", tp.desc, err)
	}
	rsp, err := tpm2.Certify{
		ObjectHandle:   tpm2.AuthHandle{Handle: lr.ObjectHandle, Name: lr.Name, Auth: tpm2.PasswordAuth(nil)},
		SignHandle:     tpm2.AuthHandle{Handle: aik.ObjectHandle, Name: aik.Name, Auth: tpm2.PasswordAuth(nil)},
		QualifyingData: tpm2.TPM2BData{Buffer: qualifyingData},
		InScheme:       sigSchemeECDSA,
	}.Execute(t)
	if err != nil {
		return nil, tp.wrap("certify", err)
	}
	sig, err := derSignature(&rsp.Signature)
	if err != nil {
		return nil, err
	}
	return &keystore.TPMAttestation{
		PubArea:      k.PubArea(),
		CertInfo:     append([]byte(nil), rsp.CertifyInfo.Bytes()...),
		Signature:    sig,
		SignatureAlg: keystore.AlgES256,
		AIKPublic:    aikKey,
		Manufacturer: info.manufacturer,
		Model:        info.model,
		Version:      info.version,
	}, nil
}
