package tpm

import (
	"crypto"
	"crypto/ecdsa"
	"encoding/asn1"
	"fmt"
	"math/big"
	"slices"

	"github.com/google/go-tpm/tpm2"
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

// eccSigningTemplate is the template of a non-exportable ECC signing key on
// curve (coordinates of size bytes) with scheme.
func eccSigningTemplate(curve tpm2.TPMECCCurve, size int, scheme tpm2.TPMTECCScheme) tpm2.TPMTPublic {
	return tpm2.TPMTPublic{
		Type:    tpm2.TPMAlgECC,
		NameAlg: tpm2.TPMAlgSHA256,
		ObjectAttributes: tpm2.TPMAObject{
			FixedTPM:            true,
			FixedParent:         true,
			SensitiveDataOrigin: true,
			UserWithAuth:        true,
			NoDA:                true,
			SignEncrypt:         true,
		},
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
// on P-256 (credentialKeyTemplate), or ES384, the same on P-384 signing
// with ECDSA-SHA384 (issue 13; swtpm and most TPMs offer P-384); both
// with the TPM_ALG_NULL scheme.
func credentialKeyTemplateFor(alg keystore.Algorithm) tpm2.TPMTPublic {
	if alg != keystore.AlgES384 {
		return credentialKeyTemplate()
	}
	return eccSigningTemplate(tpm2.TPMECCNistP384, 48, nullECCScheme)
}

// legacyCredentialKeyTemplateP384 is the ES384 template with the
// ECDSA-SHA384 scheme in the key, as vkey made them before.
func legacyCredentialKeyTemplateP384() tpm2.TPMTPublic {
	return eccSigningTemplate(tpm2.TPMECCNistP384, 48, tpm2.TPMTECCScheme{
		Scheme:  tpm2.TPMAlgECDSA,
		Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA384}),
	})
}

// sigSchemeFor is the TPMT_SIG_SCHEME that signs for alg.
func sigSchemeFor(alg keystore.Algorithm) tpm2.TPMTSigScheme {
	if alg != keystore.AlgES384 {
		return sigSchemeECDSA
	}
	return tpm2.TPMTSigScheme{
		Scheme:  tpm2.TPMAlgECDSA,
		Details: tpm2.NewTPMUSigScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSchemeHash{HashAlg: tpm2.TPMAlgSHA384}),
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

// KeyProvider returns the keystore.KeyProvider of TPM-resident ES256 keys.
func (tp *TPM) KeyProvider() keystore.KeyProvider { return provider{tp} }

// provider implements keystore.KeyProvider.
type provider struct{ tp *TPM }

// Name implements keystore.KeyProvider.
func (provider) Name() string { return ProviderName }

// Supports implements keystore.KeyProvider: ES256 (the TPM's ECC P-256),
// and ES384 when the TPM has P-384. RSA keys are not offered: a TPM's
// wrapped RSA-2048 blob would make credential IDs longer than
// maxCredentialIdLength, so device-bound RSA credentials are software keys.
func (p provider) Supports(alg keystore.Algorithm) bool {
	return alg == keystore.AlgES256 || (alg == keystore.AlgES384 && p.tp.hasP384())
}

// Generate implements keystore.KeyProvider with TPM2_Create under the SRK.
func (p provider) Generate(alg keystore.Algorithm) ([]byte, keystore.Key, error) {
	if !p.Supports(alg) {
		return nil, nil, fmt.Errorf("tpm: algorithm %d not supported (ES256, and ES384 where the TPM has P-384)", alg)
	}
	return p.generate(credentialKeyTemplateFor(alg))
}

// generate makes a credential key from template with TPM2_Create under the
// SRK and returns its blob and the key.
func (p provider) generate(template tpm2.TPMTPublic) ([]byte, keystore.Key, error) {
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
	k, err := tp.newKey(b)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: created key: %w", tp.desc, err)
	}
	return b.marshal(), k, nil
}

// Load implements keystore.KeyProvider. It checks the blob and that it was
// made under this TPM's storage key; the TPM itself is used only by Sign and
// CertifyTPM.
func (p provider) Load(alg keystore.Algorithm, data []byte) (keystore.Key, error) {
	if alg != keystore.AlgES256 && alg != keystore.AlgES384 {
		return nil, fmt.Errorf("tpm: algorithm %d not supported (ES256 and ES384 only)", alg)
	}
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
	k, err := tp.newKey(b)
	if err == nil && k.alg != alg {
		return nil, fmt.Errorf("%w: a key of algorithm %d, not %d", ErrBadBlob, k.alg, alg)
	}
	return k, err
}

// newKey builds a Key from a checked blob.
func (tp *TPM) newKey(b *blob) (*Key, error) {
	pub, alg, err := signingKeyPublicAlg(b.public)
	if err != nil {
		return nil, err
	}
	return &Key{tp: tp, b: b, pub: pub, alg: alg}, nil
}

// hasP384 reports whether the TPM implements NIST P-384 (TPM2_GetCapability
// TPM_CAP_ECC_CURVES), asked once.
func (tp *TPM) hasP384() bool {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	if tp.p384 == nil {
		has := false
		if t, err := tp.conn(); err == nil {
			rsp, err := tpm2.GetCapability{Capability: tpm2.TPMCapECCCurves, PropertyCount: 64}.Execute(t)
			if err == nil {
				if curves, err := rsp.CapabilityData.Data.ECCCurves(); err == nil {
					has = slices.Contains(curves.ECCCurves, tpm2.TPMECCNistP384)
				}
			}
		}
		tp.p384 = &has
	}
	return *tp.p384
}

// Key is a credential key resident in the TPM. It implements keystore.Key
// and keystore.TPMKey. Each use loads it, uses it and flushes it.
type Key struct {
	tp  *TPM
	b   *blob
	pub *ecdsa.PublicKey
	alg keystore.Algorithm
}

var _ keystore.TPMKey = (*Key)(nil)

// Algorithm implements keystore.Key.
func (k *Key) Algorithm() keystore.Algorithm { return k.alg }

// Public implements keystore.Key; it is an *ecdsa.PublicKey.
func (k *Key) Public() crypto.PublicKey { return k.pub }

// PubArea returns the key's TPMT_PUBLIC as the TPM encoded it.
func (k *Key) PubArea() []byte { return append([]byte(nil), k.b.public...) }

// Sign implements keystore.Key: TPM2_Load, TPM2_Sign of SHA-256(message)
// (SHA-384 for ES384), TPM2_FlushContext; the result is an ASN.1 DER ECDSA
// signature.
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
	return derSignature(&rsp.Signature)
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
