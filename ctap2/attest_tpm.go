package ctap2

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"time"

	"github.com/vkey-dev/vkey/keystore"
)

// TCG object identifiers for the AIK certificate (TCG EK Credential Profile
// for TPM Family 2.0, sections 3.2.9 and 3.2.16; WebAuthn section 8.3.1).
var (
	oidTCGAtTPMManufacturer = asn1.ObjectIdentifier{2, 23, 133, 2, 1}
	oidTCGAtTPMModel        = asn1.ObjectIdentifier{2, 23, 133, 2, 2}
	oidTCGAtTPMVersion      = asn1.ObjectIdentifier{2, 23, 133, 2, 3}
	oidTCGKpAIKCertificate  = asn1.ObjectIdentifier{2, 23, 133, 8, 3}
	oidSubjectAltName       = asn1.ObjectIdentifier{2, 5, 29, 17}
)

// tpmStatementVersion is the "ver" of the tpm attestation statement: the
// TPM specification version the statement follows (WebAuthn section 8.3).
const tpmStatementVersion = "2.0"

// tpmAttestation builds the WebAuthn "tpm" attestation statement (WebAuthn
// section 8.3) for a credential whose key lives in the TPM:
//
//	{ver: "2.0", alg, x5c: [aikCert], sig, certInfo, pubArea}
//
// The TPM's attestation identity key (AIK) certifies the credential key with
// TPM2_Certify, with qualifyingData = SHA-256(attToBeSigned) (the hash of
// "alg", ES256), so certInfo.extraData binds the statement to this
// registration (section 8.3 verification step "Verify that extraData is set
// to the hash of attToBeSigned"). The AIK certificate is issued by the
// installation's attestation CA; the CA itself is the trust anchor the
// relying party holds and is not part of x5c.
//
// The AIK certificate is issued for each registration: the AIK is a primary
// key re-derived from the endorsement seed, so its public key is the same
// every time, and issuing costs one ECDSA signature, small beside the TPM's
// own work.
func (a *Authenticator) tpmAttestation(key keystore.TPMKey, attToBeSigned []byte) (map[string]any, error) {
	qualifyingData := sha256Sum(attToBeSigned)
	att, err := key.CertifyTPM(qualifyingData[:])
	if err != nil {
		return nil, fmt.Errorf("tpm attestation: %w", err)
	}
	if att.SignatureAlg != keystore.AlgES256 {
		// qualifyingData above is SHA-256, the hash of ES256 only.
		return nil, fmt.Errorf("tpm attestation: AIK signature algorithm %d, want ES256", att.SignatureAlg)
	}
	id, err := a.store.Identity()
	if err != nil {
		return nil, fmt.Errorf("tpm attestation: reading identity: %w", err)
	}
	if ca := a.opts.AttestationCA; ca != nil {
		id.AttestationCACert, id.AttestationCAKey = ca.Cert, ca.Key // checked by ensureIdentity
	}
	aikCert, err := newAIKCertificate(id, att, a.opts.AAGUID, a.opts.Now())
	if err != nil {
		return nil, fmt.Errorf("tpm attestation: %w", err)
	}
	return map[string]any{
		"ver":      tpmStatementVersion,
		"alg":      int64(att.SignatureAlg),
		"x5c":      append([][]byte{aikCert}, a.attestChain...),
		"sig":      att.Signature,
		"certInfo": att.CertInfo,
		"pubArea":  att.PubArea,
	}, nil
}

// newAIKCertificate issues the AIK certificate with the installation's
// attestation CA, meeting WebAuthn section 8.3.1: version 3; an empty
// subject; a critical subject alternative name whose directoryName holds the
// TPM's manufacturer, model and version (TCG EK Credential Profile section
// 3.2.9); extended key usage tcg-kp-AIKCertificate; basicConstraints CA=false;
// and the id-fido-gen-ce-aaguid extension (section 8.2.1), which verifiers
// match against the AAGUID in authenticator data.
func newAIKCertificate(id *keystore.Identity, att *keystore.TPMAttestation, aaguid [16]byte, now time.Time) ([]byte, error) {
	if att.AIKPublic == nil {
		return nil, errors.New("the TPM returned no attestation key")
	}
	san, err := tpmSubjectAltName(att.Manufacturer, att.Model, att.Version)
	if err != nil {
		return nil, err
	}
	aaguidExt, err := aaguidExtension(aaguid)
	if err != nil {
		return nil, fmt.Errorf("encoding AAGUID extension: %w", err)
	}
	ca, err := x509.ParseCertificate(id.AttestationCACert)
	if err != nil {
		return nil, fmt.Errorf("parsing attestation CA certificate: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, fmt.Errorf("AIK certificate serial: %w", err)
	}
	notAfter := now.Add(attestationValidity)
	if notAfter.After(ca.NotAfter) {
		notAfter = ca.NotAfter // a certificate should not outlive its issuer
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		// Subject stays empty (section 8.3.1); the TPM is named in the SAN.
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		UnknownExtKeyUsage:    []asn1.ObjectIdentifier{oidTCGKpAIKCertificate},
		BasicConstraintsValid: true,
		IsCA:                  false,
		ExtraExtensions:       []pkix.Extension{san, aaguidExt},
	}
	return issueCertificate(id, tmpl, att.AIKPublic)
}

// tpmSubjectAltName encodes the AIK certificate's subject alternative name:
// one directoryName with the attributes tcg-at-tpmManufacturer,
// tcg-at-tpmModel and tcg-at-tpmVersion as UTF8Strings (TCG EK Credential
// Profile section 3.2.9). It is critical because the subject is empty
// (RFC 5280 section 4.2.1.6).
func tpmSubjectAltName(manufacturer, model, version string) (pkix.Extension, error) {
	if manufacturer == "" || model == "" || version == "" {
		return pkix.Extension{}, fmt.Errorf("TPM manufacturer %q, model %q or version %q is empty", manufacturer, model, version)
	}
	utf8 := func(s string) asn1.RawValue {
		return asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagUTF8String, Bytes: []byte(s)}
	}
	dn := pkix.RDNSequence{
		{{Type: oidTCGAtTPMManufacturer, Value: utf8(manufacturer)}},
		{{Type: oidTCGAtTPMModel, Value: utf8(model)}},
		{{Type: oidTCGAtTPMVersion, Value: utf8(version)}},
	}
	dnDER, err := asn1.Marshal(dn)
	if err != nil {
		return pkix.Extension{}, fmt.Errorf("encoding TPM directoryName: %w", err)
	}
	// GeneralNames ::= SEQUENCE OF GeneralName; directoryName is [4] EXPLICIT Name.
	value, err := asn1.Marshal([]asn1.RawValue{{
		Class: asn1.ClassContextSpecific, Tag: 4, IsCompound: true, Bytes: dnDER,
	}})
	if err != nil {
		return pkix.Extension{}, fmt.Errorf("encoding subject alternative name: %w", err)
	}
	return pkix.Extension{Id: oidSubjectAltName, Critical: true, Value: value}, nil
}
