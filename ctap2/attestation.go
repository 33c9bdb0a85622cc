package ctap2

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	"github.com/vkey-dev/vkey/keystore"
)

// oidFIDOGenCeAAGUID is id-fido-gen-ce-aaguid (WebAuthn section 8.2.1): the
// attestation certificate extension that carries the AAGUID.
var oidFIDOGenCeAAGUID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 45724, 1, 1, 4}

// attestationValidity is how long generated attestation certificates last.
const attestationValidity = 20 * 365 * 24 * time.Hour

// ensureIdentity creates the per-installation identity on first use: the
// credential-ID wrapping key and an attestation CA with a batch leaf
// certificate for packed attestation. A leaf whose AAGUID extension no
// longer matches the configured AAGUID is reissued.
func (a *Authenticator) ensureIdentity() error {
	id, err := a.store.Identity()
	switch {
	case errors.Is(err, keystore.ErrNotFound):
		id = &keystore.Identity{}
	case err != nil:
		return fmt.Errorf("ctap2: reading identity: %w", err)
	}
	changed := false
	if len(id.WrapKey) != 32 {
		id.WrapKey = make([]byte, 32)
		if _, err := rand.Read(id.WrapKey); err != nil {
			return fmt.Errorf("ctap2: generating wrap key: %w", err)
		}
		changed = true
	}
	if id.AttestationCAKey == nil || id.AttestationCACert == nil {
		if err := newAttestationCA(id, a.opts.Now()); err != nil {
			return err
		}
		changed = true
	}
	if !leafMatches(id.AttestationCert, a.opts.AAGUID) {
		if err := newAttestationLeaf(id, a.opts.AAGUID, a.opts.Now()); err != nil {
			return err
		}
		changed = true
	}
	if changed {
		if err := a.store.SetIdentity(id); err != nil {
			return fmt.Errorf("ctap2: storing identity: %w", err)
		}
	}
	var chain [][]byte
	if ca := a.opts.AttestationCA; ca != nil {
		// The user's CA (`vkey run --attestation-ca`) issues this run's
		// leaves; the installation's own CA stays in the store for when
		// the option is dropped.
		if id, err = userCAIdentity(id, ca, a.opts.AAGUID, a.opts.Now()); err != nil {
			return err
		}
		if !selfSigned(ca.Cert) {
			chain = [][]byte{ca.Cert} // WebAuthn section 8.2: x5c is the leaf, then its chain
		}
	}
	if err := a.useIdentity(id); err != nil {
		return err
	}
	ea, err := enterpriseIdentity(id, a.opts.AAGUID)
	if err != nil {
		return err
	}
	a.enterprise = ea
	a.enterprise.chain, a.attestChain, a.attestRoot = chain, chain, id.AttestationCACert
	return nil
}

// AttestationCA is a certificate authority of the user's choosing that
// issues the packed attestation certificates (`vkey run --attestation-ca`),
// so that a relying party's attestation trust can be set up once for a
// whole team.
type AttestationCA struct {
	// Cert is the CA's DER certificate; it must be a CA (basicConstraints
	// CA=true) whose public key matches Key.
	Cert []byte
	// Key is the CA's PKCS#8 private key.
	Key []byte
}

// userCAIdentity is id with its attestation CA replaced by ca and a batch
// leaf issued by ca for aaguid.
func userCAIdentity(id *keystore.Identity, ca *AttestationCA, aaguid [16]byte, now time.Time) (*keystore.Identity, error) {
	cert, err := x509.ParseCertificate(ca.Cert)
	if err != nil {
		return nil, fmt.Errorf("ctap2: attestation CA certificate: %w", err)
	}
	if !cert.IsCA {
		return nil, errors.New("ctap2: the attestation CA certificate is not a CA (basicConstraints CA=true is needed)")
	}
	key, err := x509.ParsePKCS8PrivateKey(ca.Key)
	if err != nil {
		return nil, fmt.Errorf("ctap2: attestation CA key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok || !signer.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(cert.PublicKey) {
		return nil, errors.New("ctap2: the attestation CA key does not match its certificate")
	}
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return nil, fmt.Errorf("ctap2: the attestation CA certificate is valid only from %s to %s", cert.NotBefore.Format(time.DateOnly), cert.NotAfter.Format(time.DateOnly))
	}
	user := *id
	user.AttestationCACert, user.AttestationCAKey = ca.Cert, ca.Key
	if err := newAttestationLeaf(&user, aaguid, now); err != nil {
		return nil, err
	}
	return &user, nil
}

// selfSigned reports whether a DER certificate is a root: issued by itself.
func selfSigned(der []byte) bool {
	cert, err := x509.ParseCertificate(der)
	return err == nil && bytes.Equal(cert.RawIssuer, cert.RawSubject) && cert.CheckSignatureFrom(cert) == nil
}

// attestationSigner is a packed attestation key and its certificate.
type attestationSigner struct {
	key  crypto.Signer
	cert []byte
	// chain holds the certificates between cert and the root, if any.
	chain [][]byte
}

// enterpriseIdentity makes the enterprise attestation key and certificate
// (CTAP 2.1 section 7.1): unlike the batch certificate of ordinary
// attestation, it uniquely identifies this key. The key is derived from
// the installation's wrap key, so it stays the same across restarts
// without another secret on disk, and the certificate names it by a
// serial number computed from its public key.
func enterpriseIdentity(id *keystore.Identity, aaguid [16]byte) (attestationSigner, error) {
	mac := hmac.New(sha256.New, id.WrapKey)
	mac.Write([]byte("vkey enterprise attestation key"))
	key, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), mac.Sum(nil))
	if err != nil {
		return attestationSigner{}, fmt.Errorf("ctap2: deriving enterprise attestation key: %w", err)
	}
	pub, err := key.PublicKey.Bytes()
	if err != nil {
		return attestationSigner{}, fmt.Errorf("ctap2: enterprise attestation key: %w", err)
	}
	fingerprint := sha256.Sum256(pub)
	ext, err := aaguidExtension(aaguid)
	if err != nil {
		return attestationSigner{}, fmt.Errorf("ctap2: encoding AAGUID extension: %w", err)
	}
	ca, err := x509.ParseCertificate(id.AttestationCACert)
	if err != nil {
		return attestationSigner{}, fmt.Errorf("ctap2: parsing attestation CA certificate: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: new(big.Int).SetBytes(fingerprint[:16]),
		Subject: pkix.Name{
			Country:            []string{"US"},
			Organization:       []string{"vkey"},
			OrganizationalUnit: []string{"Authenticator Attestation"},
			CommonName:         "vkey enterprise attestation",
			SerialNumber:       hex.EncodeToString(fingerprint[:16]),
		},
		NotBefore:             ca.NotBefore,
		NotAfter:              ca.NotAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		ExtraExtensions:       []pkix.Extension{ext},
	}
	der, err := issueCertificate(id, tmpl, &key.PublicKey)
	if err != nil {
		return attestationSigner{}, err
	}
	return attestationSigner{key: key, cert: der}, nil
}

// useIdentity caches the parsed identity for the commands.
func (a *Authenticator) useIdentity(id *keystore.Identity) error {
	key, err := x509.ParsePKCS8PrivateKey(id.AttestationKey)
	if err != nil {
		return fmt.Errorf("ctap2: parsing attestation key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return errors.New("ctap2: attestation key cannot sign")
	}
	a.wrapKey = append([]byte(nil), id.WrapKey...)
	a.attestKey, a.attestCert = signer, id.AttestationCert
	return nil
}

func randomSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

func newAttestationCA(id *keystore.Identity, now time.Time) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("ctap2: generating attestation CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return fmt.Errorf("ctap2: attestation CA serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			Organization: []string{"vkey"},
			CommonName:   fmt.Sprintf("vkey attestation root %x", serial.Bytes()[:4]),
		},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(attestationValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("ctap2: creating attestation CA certificate: %w", err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("ctap2: encoding attestation CA key: %w", err)
	}
	id.AttestationCAKey, id.AttestationCACert = pkcs8, der
	id.AttestationKey, id.AttestationCert = nil, nil
	return nil
}

// aaguidExtension is the id-fido-gen-ce-aaguid extension: an OCTET STRING
// holding the 16-byte AAGUID, itself the extension's value.
func aaguidExtension(aaguid [16]byte) (pkix.Extension, error) {
	v, err := asn1.Marshal(aaguid[:])
	return pkix.Extension{Id: oidFIDOGenCeAAGUID, Value: v}, err
}

func leafMatches(der []byte, aaguid [16]byte) bool {
	if der == nil {
		return false
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return false
	}
	for _, ext := range cert.Extensions {
		if ext.Id.Equal(oidFIDOGenCeAAGUID) {
			var got []byte
			_, err := asn1.Unmarshal(ext.Value, &got)
			return err == nil && bytes.Equal(got, aaguid[:])
		}
	}
	return false
}

// issueCertificate signs tmpl for pub with the installation's attestation CA.
func issueCertificate(id *keystore.Identity, tmpl *x509.Certificate, pub crypto.PublicKey) ([]byte, error) {
	caCert, err := x509.ParseCertificate(id.AttestationCACert)
	if err != nil {
		return nil, fmt.Errorf("ctap2: parsing attestation CA certificate: %w", err)
	}
	caKey, err := x509.ParsePKCS8PrivateKey(id.AttestationCAKey)
	if err != nil {
		return nil, fmt.Errorf("ctap2: parsing attestation CA key: %w", err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, pub, caKey)
	if err != nil {
		return nil, fmt.Errorf("ctap2: issuing attestation certificate: %w", err)
	}
	return der, nil
}

// newAttestationLeaf issues the packed attestation certificate, meeting
// WebAuthn section 8.2.1: version 3; subject C, O, OU "Authenticator
// Attestation", CN; basicConstraints CA=false; the AAGUID extension.
func newAttestationLeaf(id *keystore.Identity, aaguid [16]byte, now time.Time) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("ctap2: generating attestation key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return fmt.Errorf("ctap2: attestation serial: %w", err)
	}
	ext, err := aaguidExtension(aaguid)
	if err != nil {
		return fmt.Errorf("ctap2: encoding AAGUID extension: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			Country:            []string{"US"},
			Organization:       []string{"vkey"},
			OrganizationalUnit: []string{"Authenticator Attestation"},
			CommonName:         "vkey virtual security key",
		},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(attestationValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  false,
		ExtraExtensions:       []pkix.Extension{ext},
	}
	der, err := issueCertificate(id, tmpl, &key.PublicKey)
	if err != nil {
		return err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("ctap2: encoding attestation key: %w", err)
	}
	id.AttestationKey, id.AttestationCert = pkcs8, der
	return nil
}

// AttestationRoot returns the DER certificate of this installation's
// attestation CA, which relying parties trust to verify packed attestation.
func (a *Authenticator) AttestationRoot() ([]byte, error) {
	return append([]byte(nil), a.attestRoot...), nil
}

// attestationFormats is getInfo's attestationFormats (CTAP 2.2 section
// 6.4): the configured format first (the default), then the others this
// key can give: packed, none, and tpm when its device keys can.
func (a *Authenticator) attestationFormats() []string {
	name := func(f AttestationFormat) string {
		if f == AttestationPackedSelf {
			return "packed"
		}
		return string(f)
	}
	out := []string{name(a.opts.Attestation)}
	for _, f := range []string{"packed", "none", "tpm"} {
		if f == "tpm" && (a.opts.DeviceKeys == nil || a.opts.DeviceKeys.Name() != "tpm") {
			continue
		}
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

// preferredFormat applies makeCredential's attestationFormatsPreference
// (CTAP 2.2 section 6.1.2): the first format listed that the key can
// give for this credential key, else the configured one. "packed" is
// self attestation when the key is configured so.
func (a *Authenticator) preferredFormat(preference []string, key keystore.Key) AttestationFormat {
	for _, f := range preference {
		switch f {
		case "none":
			return AttestationNone
		case "packed":
			if a.opts.Attestation == AttestationPackedSelf {
				return AttestationPackedSelf
			}
			return AttestationPacked
		case "tpm":
			if _, ok := key.(keystore.TPMKey); ok {
				return AttestationTPM
			}
		}
	}
	return a.opts.Attestation
}

// attestationStatement signs authData || clientDataHash in the configured
// format (WebAuthn section 8.2 packed, 8.3 tpm, 8.7 none).
// With enterprise set it is packed, signed by the enterprise attestation
// key (CTAP 2.1 section 7.1), whatever the configured format.
func (a *Authenticator) attestationStatement(key keystore.Key, cred *keystore.Credential, authData, clientDataHash []byte, enterprise bool, preference []string) (string, map[string]any, error) {
	toSign := append(append([]byte(nil), authData...), clientDataHash...)
	signer := attestationSigner{key: a.attestKey, cert: a.attestCert, chain: a.attestChain}
	format := a.preferredFormat(preference, key)
	if enterprise {
		signer, format = a.enterprise, AttestationPacked
	}
	switch format {
	case AttestationNone:
		return "none", map[string]any{}, nil
	case AttestationPackedSelf:
		sig, err := key.Sign(toSign)
		if err != nil {
			return "", nil, fmt.Errorf("self attestation signature: %w", err)
		}
		return "packed", map[string]any{"alg": int64(cred.Algorithm), "sig": sig}, nil
	case AttestationTPM:
		if tk, ok := key.(keystore.TPMKey); ok {
			stmt, err := a.tpmAttestation(tk, toSign)
			return "tpm", stmt, err
		}
		// A software key cannot give TPM attestation: fall back to packed.
	}
	digest := sha256Sum(toSign)
	sig, err := signer.key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return "", nil, fmt.Errorf("attestation signature: %w", err)
	}
	return "packed", map[string]any{
		"alg": int64(keystore.AlgES256),
		"sig": sig,
		"x5c": append([][]byte{signer.cert}, signer.chain...),
	}, nil
}
