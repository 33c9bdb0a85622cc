// Package keystore holds everything a vkey authenticator remembers:
// credentials, signature counters, PIN state, configuration, the large-blob
// array and the per-installation identity (credential-ID wrapping key and
// attestation keys). It also defines the KeyProvider interface through which
// credential keys are created and used (software keys here, TPM keys in
// package tpm) and the Sealer interface that protects the master key.
//
// keystore never imports ctap2, hid or tpm.
package keystore

import (
	"crypto"
	"errors"
	"fmt"
	"time"
)

// Algorithm is a COSE algorithm identifier (RFC 9053, IANA COSE registry).
type Algorithm int64

// COSE algorithms a credential key may use.
const (
	// AlgES256 is ECDSA over P-256 with SHA-256.
	AlgES256 Algorithm = -7
	// AlgEdDSA is EdDSA; with a key on Ed25519 it is what OpenSSH and browsers send.
	AlgEdDSA Algorithm = -8
	// AlgEd25519 is the fully specified Ed25519 identifier (RFC 9864).
	AlgEd25519 Algorithm = -19
)

// ErrNotFound is returned when a credential (or other record) does not exist.
var ErrNotFound = errors.New("keystore: not found")

// ErrDeleted is returned for the ID of a deleted non-discoverable
// credential: such an ID carries its key, so the store keeps a tombstone
// (keyed by a MAC of the ID, holding its counter) to refuse it for good.
// It matches ErrNotFound too, for callers that only ask "is it stored?".
var ErrDeleted = fmt.Errorf("keystore: credential was deleted: %w", ErrNotFound)

// ErrFull is returned when no more discoverable credentials fit.
var ErrFull = errors.New("keystore: credential storage full")

// Key is a credential private key held by a KeyProvider.
type Key interface {
	// Algorithm is the COSE algorithm the key signs with.
	Algorithm() Algorithm
	// Public returns *ecdsa.PublicKey, ed25519.PublicKey or *rsa.PublicKey.
	Public() crypto.PublicKey
	// Sign signs message as WebAuthn requires for the algorithm: for ES256 an
	// ASN.1 DER ECDSA signature over SHA-256(message) (SHA-384 for ES384,
	// SHA-512 for ES512), for RS256 and PS256 an RSA signature over
	// SHA-256(message), for EdDSA a raw Ed25519 signature over message.
	Sign(message []byte) ([]byte, error)
}

// KeyProvider creates and loads credential keys.
type KeyProvider interface {
	// Name identifies the provider in stored credentials ("software", "tpm").
	Name() string
	// Supports reports whether the provider can create keys of alg.
	Supports(alg Algorithm) bool
	// Generate creates a key. blob is the provider's opaque serialized form
	// (a private key for software keys, a TPM-wrapped blob for TPM keys); the
	// caller keeps it secret (sealed in a credential ID or encrypted at rest).
	Generate(alg Algorithm) (blob []byte, key Key, err error)
	// Load turns a blob made by Generate back into a usable key.
	Load(alg Algorithm, blob []byte) (Key, error)
}

// Sealer protects a small secret (the store's master key) so that only this
// machine (for the TPM) can recover it.
type Sealer interface {
	// Seal returns an opaque blob that Unseal turns back into secret.
	Seal(secret []byte) ([]byte, error)
	// Unseal recovers the secret sealed by Seal.
	Unseal(blob []byte) ([]byte, error)
}

// Credential is one stored credential. Discoverable credentials are always
// stored; non-discoverable ones are stored only when they need state the
// credential ID cannot carry (syncable credentials, so they can be exported).
type Credential struct {
	ID              []byte    `cbor:"1,keyasint"`
	RPID            string    `cbor:"2,keyasint"`
	RPName          string    `cbor:"3,keyasint,omitempty"`
	UserID          []byte    `cbor:"4,keyasint,omitempty"`
	UserName        string    `cbor:"5,keyasint,omitempty"`
	UserDisplayName string    `cbor:"6,keyasint,omitempty"`
	Algorithm       Algorithm `cbor:"7,keyasint"`
	// Provider names the KeyProvider that made KeyBlob.
	Provider string `cbor:"8,keyasint"`
	// KeyBlob is secret: the provider's serialized private key.
	KeyBlob      []byte `cbor:"9,keyasint"`
	Discoverable bool   `cbor:"10,keyasint,omitempty"`
	// CredProtect is the credProtect level (1-3), 0 meaning unset (level 1).
	CredProtect uint8 `cbor:"11,keyasint,omitempty"`
	// CredRandomWithUV and CredRandomWithoutUV are the hmac-secret CredRandom
	// values (CTAP 2.1 section 12.5); nil when hmac-secret was not requested.
	CredRandomWithUV    []byte `cbor:"12,keyasint,omitempty"`
	CredRandomWithoutUV []byte `cbor:"13,keyasint,omitempty"`
	CredBlob            []byte `cbor:"14,keyasint,omitempty"`
	LargeBlobKey        []byte `cbor:"15,keyasint,omitempty"`
	// BackupEligible (BE) marks a syncable credential; BackupState (BS) is
	// set once it has been exported (WebAuthn section 6.1).
	BackupEligible bool      `cbor:"16,keyasint,omitempty"`
	BackupState    bool      `cbor:"17,keyasint,omitempty"`
	Created        time.Time `cbor:"18,keyasint"`
	// PublicKey is the COSE_Key encoding of the public key.
	PublicKey []byte `cbor:"19,keyasint,omitempty"`
	// HMACSecret records that the hmac-secret extension was enabled.
	HMACSecret bool `cbor:"20,keyasint,omitempty"`
	// ThirdPartyPayment records that the credential was made for
	// third-party payment (CTAP 2.2 thirdPartyPayment extension).
	ThirdPartyPayment bool `cbor:"21,keyasint,omitempty"`
}

// Clone returns a deep copy of id.
func (id *Identity) Clone() *Identity {
	if id == nil {
		return nil
	}
	c := *id
	for _, b := range []*[]byte{&c.WrapKey, &c.AttestationCAKey, &c.AttestationCACert, &c.AttestationKey, &c.AttestationCert} {
		if *b != nil {
			*b = append([]byte(nil), (*b)...)
		}
	}
	return &c
}

// Clone returns a deep copy of c.
func (c *Credential) Clone() *Credential {
	if c == nil {
		return nil
	}
	d := *c
	for _, b := range []*[]byte{&d.ID, &d.UserID, &d.KeyBlob, &d.CredRandomWithUV, &d.CredRandomWithoutUV, &d.CredBlob, &d.LargeBlobKey, &d.PublicKey} {
		if *b != nil {
			*b = append([]byte(nil), (*b)...)
		}
	}
	return &d
}

// RPSummary is a relying party that has discoverable credentials.
type RPSummary struct {
	// ID is the RP ID.
	ID string
	// Name is the RP name stored with one of its credentials (they
	// normally agree; which one is not specified when they do not).
	Name string
}

// PINState is the persistent part of clientPIN (CTAP 2.1 section 6.5).
type PINState struct {
	// Hash is LEFT(SHA-256(PIN), 16); nil when no PIN is set.
	Hash []byte `cbor:"1,keyasint,omitempty"`
	// CodePoints is the length of the current PIN in Unicode code points.
	CodePoints int `cbor:"2,keyasint,omitempty"`
	// Retries is pinRetries: attempts left before the PIN is blocked.
	Retries int `cbor:"3,keyasint"`
	// ForceChange is forcePINChange (set by authenticatorConfig).
	ForceChange bool `cbor:"4,keyasint,omitempty"`
	// PersistentToken is the persistent pinUvAuthToken (CTAP 2.2, the
	// pcmr permission): it outlives a power cycle and is void after a PIN
	// change or authenticatorReset. nil when none was issued (and in a
	// state written before it existed).
	PersistentToken []byte `cbor:"5,keyasint,omitempty"`
}

// Config is the persistent authenticatorConfig state (CTAP 2.1 section 6.11).
type Config struct {
	AlwaysUV              bool     `cbor:"1,keyasint,omitempty"`
	EnterpriseAttestation bool     `cbor:"2,keyasint,omitempty"`
	MinPINLength          int      `cbor:"3,keyasint,omitempty"`
	MinPINLengthRPIDs     []string `cbor:"4,keyasint,omitempty"`
}

// Identity holds the per-installation secrets generated on first use.
type Identity struct {
	// WrapKey is the 32-byte AES-256-GCM key that seals credential IDs.
	WrapKey []byte `cbor:"1,keyasint"`
	// AttestationCAKey/Cert are the per-installation attestation root
	// (PKCS#8 and DER); AttestationKey/Cert the batch leaf it issued.
	AttestationCAKey  []byte `cbor:"2,keyasint,omitempty"`
	AttestationCACert []byte `cbor:"3,keyasint,omitempty"`
	AttestationKey    []byte `cbor:"4,keyasint,omitempty"`
	AttestationCert   []byte `cbor:"5,keyasint,omitempty"`
}

// Store is the authenticator's memory. Implementations must be safe for
// concurrent use, must make every successful write durable before it
// returns, except where a method says otherwise, and must never return
// values that share memory with what they hold. Every operation costs what
// it touches, not what the store holds, except Credentials (walk a large
// store with CredentialsPage). A nil argument is an error, never a panic.
// Package storetest checks all of this for any implementation.
type Store interface {
	// Identity returns the installation identity, or ErrNotFound before one is set.
	Identity() (*Identity, error)
	// SetIdentity stores the installation identity.
	SetIdentity(id *Identity) error

	// PutCredential inserts c, or replaces the credential with the same ID.
	// It returns ErrFull when a new discoverable credential does not fit.
	// Storing a deleted credential again (a restore) keeps its counter.
	PutCredential(c *Credential) error
	// PutDiscoverable stores the discoverable credential c and, in the same
	// atomic write, deletes every other discoverable credential with the
	// same relying party and user handle (CTAP 2.1 section 6.1.2 step 17:
	// a crash leaves the old credential or the new one, never neither). It
	// returns the IDs of the credentials it replaced.
	PutDiscoverable(c *Credential) (replaced [][]byte, err error)
	// Credential returns the credential with this ID, ErrDeleted for a
	// deleted non-discoverable credential, or ErrNotFound.
	Credential(id []byte) (*Credential, error)
	// Credentials returns every stored credential, oldest first. It is the
	// one operation whose cost grows with the store.
	Credentials() ([]*Credential, error)
	// CredentialsPage returns at most limit (> 0) stored credentials that
	// follow the cursor after (nil: from the first), in an order of the
	// store's choosing that does not change while a credential is stored,
	// and the cursor to pass for the next page (nil when no credential
	// follows). A cursor is opaque: the key of the page's last record. A
	// walk returns no credential twice and skips none stored throughout
	// it; one added or deleted meanwhile may or may not appear. It costs
	// the page it reads, not the store.
	CredentialsPage(after []byte, limit int) (creds []*Credential, next []byte, err error)
	// DiscoverableCredentials returns the discoverable credentials whose
	// RP ID hashes (SHA-256) to rpIDHash, oldest first.
	DiscoverableCredentials(rpIDHash []byte) ([]*Credential, error)
	// NonDiscoverableCredentials returns the stored non-discoverable
	// credentials (syncable ones, and those whose key is kept in the store)
	// whose RP ID hashes to rpIDHash, oldest first; tombstones are not
	// credentials.
	NonDiscoverableCredentials(rpIDHash []byte) ([]*Credential, error)
	// DiscoverableCount is the number of discoverable credentials stored.
	DiscoverableCount() (int, error)
	// DiscoverableRPs lists the relying parties that have discoverable
	// credentials, ordered by RP ID. It reads one credential per relying
	// party (not one per credential), so that credential management's
	// enumerateRPs does not grow with the store.
	DiscoverableRPs() ([]RPSummary, error)
	// DeleteCredential removes a credential; ErrNotFound if absent. A
	// non-discoverable one leaves a tombstone (see ErrDeleted).
	DeleteCredential(id []byte) error
	// RemainingDiscoverable is how many more discoverable credentials fit:
	// never negative (0 for a store holding more than its limit), and a
	// large estimate for a store without a limit.
	RemainingDiscoverable() int

	// NextSignCount increments the signature counter of credential id and
	// returns the new value. A stored credential has a counter of its own;
	// every other ID shares one global counter (so unstored credentials
	// leave nothing behind). The value returned must never be returned
	// again for that id, across restarts and crashes. A deleted
	// non-discoverable credential's ID yields ErrDeleted.
	NextSignCount(id []byte) (uint32, error)
	// SignCount returns the last value NextSignCount returned for id (0 if
	// none; the global counter for an ID not stored).
	SignCount(id []byte) (uint32, error)
	// SetSignCount sets the counter of a stored credential (for the control
	// API and backup import; ErrNotFound if it is not stored); the next
	// NextSignCount returns a larger value.
	SetSignCount(id []byte, n uint32) error

	// PINState returns the clientPIN state (Retries is 8 on a new store).
	PINState() (PINState, error)
	// SetPINState stores the clientPIN state.
	SetPINState(s PINState) error

	// Config returns the authenticatorConfig state.
	Config() (Config, error)
	// SetConfig stores the authenticatorConfig state.
	SetConfig(c Config) error

	// LargeBlobArray returns the serialized large-blob array (CTAP 2.1
	// section 6.10); nil when none was ever written.
	LargeBlobArray() ([]byte, error)
	// SetLargeBlobArray stores the serialized large-blob array.
	SetLargeBlobArray(b []byte) error

	// Reset wipes credentials, counters, tombstones, PIN, config and large
	// blobs, and gives the identity a new WrapKey (so old credential IDs
	// die), keeping the attestation keys.
	Reset() error
	// Close releases the store (locks, files).
	Close() error
}

// DefaultPINRetries is the number of PIN attempts a new authenticator allows
// (CTAP 2.1 section 6.5.2.2: maximum of 8).
const DefaultPINRetries = 8

// TPMAttestation is what a TPM-resident key offers for the WebAuthn "tpm"
// attestation statement format (WebAuthn section 8.3): TPM2_Certify over the
// credential key by an attestation identity key (AIK) in the same TPM.
type TPMAttestation struct {
	// PubArea is the credential key's TPMT_PUBLIC, as the TPM encodes it.
	PubArea []byte
	// CertInfo is the TPMS_ATTEST structure the AIK signed; its extraData is
	// the qualifying data passed to CertifyTPM.
	CertInfo []byte
	// Signature is the AIK's signature over CertInfo (ASN.1 DER ECDSA for ES256).
	Signature []byte
	// SignatureAlg is the COSE algorithm of Signature.
	SignatureAlg Algorithm
	// AIKPublic is the AIK's public key, for the AIK certificate.
	AIKPublic crypto.PublicKey
	// Manufacturer ("id:XXXXXXXX"), Model and Version describe the TPM for
	// the AIK certificate's subject alternative name (WebAuthn section 8.3.1).
	Manufacturer, Model, Version string
}

// TPMKey is a Key that lives in a TPM and can prove it.
type TPMKey interface {
	Key
	// CertifyTPM certifies the key with the TPM's attestation key, with
	// qualifyingData as the TPMS_ATTEST extraData.
	CertifyTPM(qualifyingData []byte) (*TPMAttestation, error)
}
