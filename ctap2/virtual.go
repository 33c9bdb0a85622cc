package ctap2

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/vkey-dev/vkey/keystore"
)

// This file is what the control API (package internal/control) needs and a
// hardware key cannot offer: it is shaped after the credential commands of
// the W3C WebAuthn virtual authenticator (WebAuthn Level 3 section 11,
// "Add Credential", "Get Credentials", "Remove Credential", "Remove All
// Credentials", "Set Credential Properties"). Every method that changes
// state takes a.mu, so a change never interleaves with a CTAP command; the
// listing reads the store a page at a time without it.

// Errors of the virtual-authenticator methods.
var (
	// ErrCredentialExists is returned by AddCredential for an ID in use.
	ErrCredentialExists = errors.New("a credential with this ID already exists")
	// ErrInvalidVirtualCredential is wrapped by AddCredential and
	// SetCredentialProperties for parameters that make no credential.
	ErrInvalidVirtualCredential = errors.New("invalid credential parameters")
)

// maxVirtualCredentialIDLength bounds the IDs AddCredential accepts; they
// must fit getInfo's maxCredentialIdLength and authenticator data's 16-bit
// length (WebAuthn section 6.5.1).
const maxVirtualCredentialIDLength = maxCredentialIDLength

// VirtualCredential is a credential as the control API adds and reports it
// (the WebDriver "Credential Parameters" of WebAuthn section 11.3).
type VirtualCredential struct {
	// ID is the credential ID; AddCredential makes one when it is empty.
	ID []byte
	// RPID is the relying party.
	RPID string
	// UserHandle is the user.id (required for discoverable credentials; at
	// most 64 bytes).
	UserHandle []byte
	// UserName and UserDisplayName are optional account names.
	UserName, UserDisplayName string
	// Discoverable is the WebDriver isResidentCredential.
	Discoverable bool
	// PrivateKey is the credential key as PKCS#8 (P-256 for ES256, Ed25519
	// for EdDSA). AddCredential requires it; VirtualCredentials returns it
	// only for syncable software credentials, since a device-bound key never
	// leaves the authenticator (WebAuthn section 6.1.3).
	PrivateKey []byte
	// Algorithm is the COSE algorithm (derived from PrivateKey on add).
	Algorithm keystore.Algorithm
	// SignCount is the signature counter: the next assertion exceeds it.
	SignCount uint32
	// LargeBlob is the credential's large blob (CTAP 2.1 section 6.10.3),
	// stored encrypted in the large-blob array under a per-credential
	// largeBlobKey; nil for none.
	LargeBlob []byte
	// BackupEligible and BackupState are the BE and BS flags (WebAuthn
	// section 6.1).
	BackupEligible, BackupState bool
	// PublicKey is the COSE_Key of the credential (reported, ignored on add).
	PublicKey []byte
	// Provider names the key provider ("software", "tpm"); reported only.
	Provider string

	// created orders VirtualCredentials.
	created time.Time
}

// AddCredential stores a credential made from c (WebDriver "Add
// Credential") and returns its ID. A discoverable credential replaces the
// one of the same relying party and user handle, as makeCredential would
// (CTAP 2.1 section 6.1.2 step 17).
func (a *Authenticator) AddCredential(c VirtualCredential) ([]byte, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.addCredentialLocked(c)
}

// AddVirtualCredential is AddCredential returning the credential as
// stored (public key, counter), read under the same lock: a concurrent
// removal cannot come between the two.
func (a *Authenticator) AddVirtualCredential(c VirtualCredential) (VirtualCredential, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	id, err := a.addCredentialLocked(c)
	if err != nil {
		return VirtualCredential{}, err
	}
	return a.virtualByIDLocked(id)
}

// addCredentialLocked is AddCredential with a.mu held.
func (a *Authenticator) addCredentialLocked(c VirtualCredential) ([]byte, error) {
	if c.RPID == "" {
		return nil, fmt.Errorf("%w: rpId is required", ErrInvalidVirtualCredential)
	}
	if len(c.UserHandle) > 64 {
		return nil, fmt.Errorf("%w: userHandle is longer than 64 bytes", ErrInvalidVirtualCredential)
	}
	if c.Discoverable && len(c.UserHandle) == 0 {
		return nil, fmt.Errorf("%w: a discoverable credential needs a userHandle", ErrInvalidVirtualCredential)
	}
	if c.BackupState && !c.BackupEligible {
		return nil, fmt.Errorf("%w: backupState needs backupEligibility", ErrInvalidVirtualCredential)
	}
	if len(c.ID) > maxVirtualCredentialIDLength {
		return nil, fmt.Errorf("%w: credential ID longer than %d bytes", ErrInvalidVirtualCredential, maxVirtualCredentialIDLength)
	}
	alg, err := pkcs8Algorithm(c.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidVirtualCredential, err)
	}
	if c.Algorithm != 0 && c.Algorithm != alg && !(c.Algorithm == keystore.AlgEd25519 && alg == keystore.AlgEdDSA) &&
		!(c.Algorithm == keystore.AlgPS256 && alg == keystore.AlgRS256) {
		return nil, fmt.Errorf("%w: the private key does not match algorithm %d", ErrInvalidVirtualCredential, c.Algorithm)
	}
	if c.Algorithm != 0 {
		alg = c.Algorithm
	}
	provider := a.opts.SoftwareKeys
	key, err := provider.Load(alg, c.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidVirtualCredential, err)
	}

	cred := &keystore.Credential{
		RPID: c.RPID, UserID: c.UserHandle, UserName: c.UserName, UserDisplayName: c.UserDisplayName,
		Algorithm: alg, Provider: provider.Name(), KeyBlob: append([]byte(nil), c.PrivateKey...),
		Discoverable: c.Discoverable, BackupEligible: c.BackupEligible, BackupState: c.BackupState,
		Created: a.opts.Now(),
	}
	if cred.PublicKey, err = encodeCOSEKey(alg, key.Public()); err != nil {
		return nil, err
	}
	if len(c.ID) == 0 {
		rpIDHash := sha256Sum([]byte(c.RPID))
		if cred.ID, err = sealCredentialID(a.wrapKey, rpIDHash[:], cred); err != nil {
			return nil, err
		}
	} else {
		cred.ID = append([]byte(nil), c.ID...)
		if _, err := a.store.Credential(cred.ID); err == nil {
			return nil, ErrCredentialExists
		} else if !errors.Is(err, keystore.ErrNotFound) {
			return nil, fmt.Errorf("reading credential: %w", err)
		}
	}
	var newArray []byte
	if c.LargeBlob != nil {
		cred.LargeBlobKey = randomBytes(32)
		if newArray, err = a.largeBlobArrayWith(cred.LargeBlobKey, c.LargeBlob); err != nil {
			return nil, err
		}
	}
	if err := a.putCredential(cred); err != nil {
		return nil, fmt.Errorf("storing credential: %w", err)
	}
	if err := a.store.SetSignCount(cred.ID, c.SignCount); err != nil {
		return nil, fmt.Errorf("setting the signature counter: %w", err)
	}
	if newArray != nil {
		if err := a.store.SetLargeBlobArray(newArray); err != nil {
			return nil, fmt.Errorf("storing large-blob array: %w", err)
		}
	}
	a.opts.Logger.Info("credential added through the control API", "rp", c.RPID, "discoverable", c.Discoverable)
	return cred.ID, nil
}

// pkcs8Algorithm is the COSE algorithm of a PKCS#8 private key.
func pkcs8Algorithm(der []byte) (keystore.Algorithm, error) {
	if len(der) == 0 {
		return 0, errors.New("privateKey (PKCS#8) is required")
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return 0, fmt.Errorf("privateKey is not PKCS#8: %w", err)
	}
	switch k := k.(type) {
	case *ecdsa.PrivateKey:
		alg, ok := map[string]keystore.Algorithm{"P-256": keystore.AlgES256, "P-384": keystore.AlgES384, "P-521": keystore.AlgES512}[k.Curve.Params().Name]
		if !ok {
			return 0, fmt.Errorf("unsupported curve %s (want P-256, P-384 or P-521)", k.Curve.Params().Name)
		}
		return alg, nil
	case ed25519.PrivateKey:
		return keystore.AlgEdDSA, nil
	case *rsa.PrivateKey:
		return keystore.AlgRS256, nil // RS256 unless the caller names PS256
	}
	return 0, fmt.Errorf("unsupported private key type %T (want ECDSA, Ed25519 or RSA)", k)
}

// Paging of VirtualCredentialsPage.
const (
	// DefaultVirtualPage is the page size the control API uses when the
	// caller names none.
	DefaultVirtualPage = 100
	// MaxVirtualPage bounds a page: what one call decrypts and encodes.
	MaxVirtualPage = 1000
)

// ErrInvalidPage is returned by VirtualCredentialsPage for a limit out of
// range or a cursor it did not make.
var ErrInvalidPage = errors.New("invalid page request")

// Cursors of VirtualCredentialsPage: a tag byte, then the position.
const (
	cursorAll byte = 'a' // then a keystore.Store.CredentialsPage cursor
	cursorRP  byte = 'r' // then the last credential ID of the page
)

// VirtualCredentials returns every credential the authenticator stores
// (WebDriver "Get Credentials"), oldest first. Credentials that live only
// in their own ID (non-discoverable, device-bound, made by makeCredential)
// are not held by the authenticator and are not listed. It reads the store
// a page at a time without holding the authenticator's lock (see
// VirtualCredentialsPage), so CTAP commands go on meanwhile; its cost still
// grows with the store.
func (a *Authenticator) VirtualCredentials() ([]VirtualCredential, error) {
	var out []VirtualCredential
	var cursor []byte
	for {
		page, next, err := a.VirtualCredentialsPage("", cursor, MaxVirtualPage)
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if next == nil {
			break
		}
		cursor = next
	}
	sortVirtualOldestFirst(out)
	return out, nil
}

// sortVirtualOldestFirst orders vs by creation time, then ID, as
// keystore.SortOldestFirst orders credentials.
func sortVirtualOldestFirst(vs []VirtualCredential) {
	slices.SortStableFunc(vs, func(x, y VirtualCredential) int {
		if c := x.created.Compare(y.created); c != 0 {
			return c
		}
		return bytes.Compare(x.ID, y.ID)
	})
}

// VirtualCredentialsPage returns at most limit (1 to MaxVirtualPage)
// stored credentials that follow cursor (nil: the first page), and the
// cursor of the next page (nil after the last). With rpID, only that
// relying party's credentials, ordered by ID, found through the store's
// relying-party indices of discoverable and of stored non-discoverable
// credentials (syncable ones, and those whose key is kept in the store,
// credential ID kind 7): a page costs what the relying party holds, not
// what the store holds. Without rpID, every stored
// credential, in the store's own stable order (see
// keystore.Store.CredentialsPage).
//
// The authenticator's lock is not held: each page is one read of the
// store and one of the large-blob array, so CTAP commands are not held up
// by a listing. A credential added or removed during a walk may or may not
// be listed; none is listed twice and none stored throughout is missed. A
// cursor is opaque; one this method did not make is ErrInvalidPage.
func (a *Authenticator) VirtualCredentialsPage(rpID string, cursor []byte, limit int) (page []VirtualCredential, next []byte, err error) {
	if limit < 1 || limit > MaxVirtualPage {
		return nil, nil, fmt.Errorf("%w: limit %d is not between 1 and %d", ErrInvalidPage, limit, MaxVirtualPage)
	}
	var creds []*keystore.Credential
	if rpID == "" {
		var after []byte
		if cursor != nil {
			if len(cursor) < 2 || cursor[0] != cursorAll {
				return nil, nil, fmt.Errorf("%w: the cursor is not one this key made", ErrInvalidPage)
			}
			after = cursor[1:]
		}
		if creds, after, err = a.store.CredentialsPage(after, limit); err != nil {
			return nil, nil, fmt.Errorf("listing credentials: %w", err)
		}
		if after != nil {
			next = append([]byte{cursorAll}, after...)
		}
	} else {
		var after []byte
		if cursor != nil {
			if len(cursor) < 2 || cursor[0] != cursorRP {
				return nil, nil, fmt.Errorf("%w: the cursor is not one this key made", ErrInvalidPage)
			}
			after = cursor[1:]
		}
		if creds, err = a.rpCredentials(rpID); err != nil {
			return nil, nil, err
		}
		// Ordered by ID, the last ID of a page is where the next starts,
		// whatever is added or removed meanwhile.
		slices.SortFunc(creds, func(x, y *keystore.Credential) int { return bytes.Compare(x.ID, y.ID) })
		i := 0
		if after != nil {
			i, _ = slices.BinarySearchFunc(creds, after, func(c *keystore.Credential, id []byte) int { return bytes.Compare(c.ID, id) })
			for i < len(creds) && bytes.Equal(creds[i].ID, after) {
				i++
			}
		}
		end := min(i+limit, len(creds))
		if end < len(creds) {
			next = append([]byte{cursorRP}, creds[end-1].ID...)
		}
		creds = creds[i:end]
	}
	if len(creds) == 0 {
		return []VirtualCredential{}, next, nil
	}
	// The large-blob array is read and parsed once per page, and only
	// when a credential of the page has a largeBlobKey.
	var blobs []LargeBlobEntry
	if slices.ContainsFunc(creds, func(c *keystore.Credential) bool { return c.LargeBlobKey != nil }) {
		if blobs, err = a.largeBlobEntries(); err != nil {
			return nil, nil, err
		}
	}
	page = make([]VirtualCredential, 0, len(creds))
	for _, c := range creds {
		v, err := a.virtualOf(c, blobs)
		if err != nil {
			return nil, nil, err
		}
		page = append(page, v)
	}
	return page, next, nil
}

// rpCredentials returns the stored credentials of rpID through the
// store's two relying-party indices: discoverable and non-discoverable.
func (a *Authenticator) rpCredentials(rpID string) ([]*keystore.Credential, error) {
	h := sha256Sum([]byte(rpID))
	creds, err := a.store.DiscoverableCredentials(h[:])
	if err != nil {
		return nil, fmt.Errorf("listing credentials: %w", err)
	}
	nd, err := a.store.NonDiscoverableCredentials(h[:])
	if err != nil {
		return nil, fmt.Errorf("listing credentials: %w", err)
	}
	return slices.DeleteFunc(append(creds, nd...), func(c *keystore.Credential) bool { return c.RPID != rpID }), nil
}

// VirtualCredential returns the stored credential with this ID, or an
// error matching keystore.ErrNotFound.
func (a *Authenticator) VirtualCredential(id []byte) (VirtualCredential, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.virtualByIDLocked(id)
}

// virtualByIDLocked is VirtualCredential with a.mu held.
func (a *Authenticator) virtualByIDLocked(id []byte) (VirtualCredential, error) {
	c, err := a.store.Credential(id)
	if err != nil {
		return VirtualCredential{}, fmt.Errorf("reading credential: %w", err)
	}
	blobs, err := a.largeBlobEntries()
	if err != nil {
		return VirtualCredential{}, err
	}
	return a.virtualOf(c, blobs)
}

// virtualOf makes the VirtualCredential of c, with its large blob from
// blobs. It needs no lock: it reads only the store.
func (a *Authenticator) virtualOf(c *keystore.Credential, blobs []LargeBlobEntry) (VirtualCredential, error) {
	n, err := a.store.SignCount(c.ID)
	if err != nil {
		return VirtualCredential{}, fmt.Errorf("reading the signature counter: %w", err)
	}
	v := VirtualCredential{
		ID: c.ID, RPID: c.RPID, UserHandle: c.UserID, UserName: c.UserName, UserDisplayName: c.UserDisplayName,
		Discoverable: c.Discoverable, Algorithm: c.Algorithm, SignCount: n,
		BackupEligible: c.BackupEligible, BackupState: c.BackupState,
		PublicKey: c.PublicKey, Provider: c.Provider, created: c.Created,
	}
	if c.BackupEligible && c.Provider == keystore.SoftwareProviderName {
		v.PrivateKey = c.KeyBlob
	}
	if c.LargeBlobKey != nil {
		for _, e := range blobs {
			if b, ok := e.Open(c.LargeBlobKey); ok {
				v.LargeBlob = b
				break
			}
		}
	}
	return v, nil
}

// lockForRemoval locks a for a Go API call that deletes stored
// credentials and drops what getNextAssertion and credential management
// enumerations remember, since it may name what goes away. The function it
// returns unlocks a and then delivers the events emitted meanwhile.
func (a *Authenticator) lockForRemoval() (unlock func()) {
	a.mu.Lock()
	a.changedLocked()
	a.volatile.next = nil
	a.volatile.cm = credMgmtVolatile{}
	return func() {
		a.mu.Unlock()
		a.flushEvents(context.Background())
	}
}

// RemoveCredential deletes a stored credential (WebDriver "Remove
// Credential"); the error matches keystore.ErrNotFound if there is none.
func (a *Authenticator) RemoveCredential(id []byte) error {
	defer a.lockForRemoval()()
	var rpID string
	if c, err := a.store.Credential(id); err == nil {
		rpID = c.RPID
	}
	if err := a.store.DeleteCredential(id); err != nil {
		return fmt.Errorf("deleting credential: %w", err)
	}
	a.emit(CredentialDeleted{RPID: rpID, CredentialID: append([]byte(nil), id...)})
	return nil
}

// RemoveAllCredentials deletes every stored credential (WebDriver "Remove
// All Credentials") and returns how many there were. Credentials that live
// only in their ID are not stored and stay usable; authenticatorReset ends
// them. It reads the store a page at a time without the lock and takes the
// lock only to delete a page, so CTAP commands go on between pages; a
// credential made meanwhile may or may not be removed.
func (a *Authenticator) RemoveAllCredentials() (int, error) {
	const page = 100 // deletions (one commit each) per hold of the lock
	n := 0
	var after []byte
	for {
		creds, next, err := a.store.CredentialsPage(after, page)
		if err != nil {
			return n, fmt.Errorf("listing credentials: %w", err)
		}
		if len(creds) > 0 {
			removed, err := a.removeCredentials(creds)
			n += removed
			if err != nil {
				return n, err
			}
		}
		if next == nil {
			return n, nil
		}
		after = next
	}
}

// removeCredentials deletes creds under the lock and reports how many
// were still stored.
func (a *Authenticator) removeCredentials(creds []*keystore.Credential) (int, error) {
	defer a.lockForRemoval()()
	n := 0
	for _, c := range creds {
		err := a.store.DeleteCredential(c.ID)
		if errors.Is(err, keystore.ErrNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			return n, fmt.Errorf("deleting credential: %w", err)
		}
		a.emit(CredentialDeleted{RPID: c.RPID, CredentialID: c.ID})
		n++
	}
	return n, nil
}

// SetCredentialProperties changes a stored credential's signature counter
// (the next assertion returns a larger value) and its BE/BS flags
// (WebDriver "Set Credential Properties"); nil leaves a property as it is.
// BS without BE is refused (WebAuthn section 6.1.3).
func (a *Authenticator) SetCredentialProperties(id []byte, signCount *uint32, be, bs *bool) error {
	defer a.flushEvents(context.Background())
	a.mu.Lock()
	defer a.mu.Unlock()
	a.changedLocked()
	c, err := a.store.Credential(id)
	if err != nil {
		return fmt.Errorf("reading credential: %w", err)
	}
	if be != nil || bs != nil {
		if be != nil {
			c.BackupEligible = *be
		}
		if bs != nil {
			c.BackupState = *bs
		}
		if c.BackupState && !c.BackupEligible {
			return fmt.Errorf("%w: backupState needs backupEligibility", ErrInvalidVirtualCredential)
		}
		if err := a.store.PutCredential(c); err != nil {
			return fmt.Errorf("storing credential: %w", err)
		}
	}
	if signCount != nil {
		if err := a.store.SetSignCount(id, *signCount); err != nil {
			return fmt.Errorf("setting the signature counter: %w", err)
		}
	}
	a.emit(CredentialUpdated{RPID: c.RPID, CredentialID: c.ID})
	return nil
}

// largeBlobEntries parses the stored large-blob array; an array that is
// absent or fails its check is empty (CTAP 2.1 section 6.10.4: the
// platform treats it so).
func (a *Authenticator) largeBlobEntries() ([]LargeBlobEntry, error) {
	arr, err := a.largeBlobArray()
	if err != nil {
		return nil, err
	}
	return ParseLargeBlobArray(arr), nil
}

// largeBlobArrayWith returns the serialized large-blob array with blob
// added, encrypted under key.
func (a *Authenticator) largeBlobArrayWith(key, blob []byte) ([]byte, error) {
	entries, err := a.largeBlobEntries()
	if err != nil {
		return nil, err
	}
	e, err := SealLargeBlob(key, blob)
	if err != nil {
		return nil, err
	}
	entries = append(entries, e)
	out, err := EncodeLargeBlobArray(entries)
	if err != nil {
		return nil, err
	}
	if limit := a.maxLargeBlobArray(); len(out) > limit {
		return nil, fmt.Errorf("%w: the large-blob array would exceed %d bytes", ErrInvalidVirtualCredential, limit)
	}
	return out, nil
}
