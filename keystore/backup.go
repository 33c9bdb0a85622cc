package keystore

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/vkey-dev/vkey/internal/escape"
)

// Backup file layout (all integers big-endian). Everything before the
// ciphertext is the header, authenticated as AES-GCM additional data:
//
//	magic    8 bytes  "VKEYBKUP"
//	version  2 bytes  backupVersion
//	time     4 bytes  argon2id passes
//	memory   4 bytes  argon2id memory in KiB
//	threads  1 byte   argon2id lanes
//	saltLen  1 byte
//	salt     saltLen bytes
//	nonce    12 bytes
//	ciphertext: AES-256-GCM(key = argon2id(passphrase, salt), CBOR backupDoc)
var backupMagic = [8]byte{'V', 'K', 'E', 'Y', 'B', 'K', 'U', 'P'}

const (
	backupVersion    = 1
	backupDocVersion = 1
	backupSaltSize   = 16
)

// ErrBadBackup is returned for data that is not a vkey backup file this
// version understands.
var ErrBadBackup = errors.New("not a vkey backup file, or a damaged one")

// DeviceBoundError is returned when a device-bound credential (BE=0,
// WebAuthn section 6.1.3) is asked to leave this authenticator.
type DeviceBoundError struct {
	// ID is the credential ID.
	ID []byte
	// RPID is its relying party; empty for a U2F credential, which
	// knows its application only by hash.
	RPID string
}

// Error implements error.
func (e *DeviceBoundError) Error() string {
	if e.RPID == "" {
		return fmt.Sprintf("credential %s (a U2F credential) is device-bound and never leaves this key", shortID(e.ID))
	}
	return fmt.Sprintf("credential %s for %s is device-bound and never leaves this key", shortID(e.ID), escape.Terminal(e.RPID))
}

func shortID(id []byte) string {
	if len(id) > 8 {
		return hex.EncodeToString(id[:8]) + "…"
	}
	return hex.EncodeToString(id)
}

type backupEntry struct {
	Credential *Credential `cbor:"1,keyasint"`
	SignCount  uint32      `cbor:"2,keyasint"`
}

type backupDoc struct {
	Version int           `cbor:"1,keyasint"`
	Entries []backupEntry `cbor:"2,keyasint"`
}

// ExportSyncable writes every syncable (BackupEligible) credential of s and
// its signature counter into a backup file encrypted under passphrase, and
// then marks those credentials as backed up (BackupState, the BS flag of
// WebAuthn section 6.1) in s. Device-bound credentials are never exported.
func ExportSyncable(s Store, passphrase []byte) ([]byte, error) {
	return exportSyncable(s, nil, passphrase, DefaultArgon2Params, true)
}

// ExportSelected is ExportSyncable for the credentials with the given IDs
// only; a device-bound one makes it fail with a *DeviceBoundError, a
// missing one with ErrNotFound, and nothing is exported or marked.
func ExportSelected(s Store, ids [][]byte, passphrase []byte) ([]byte, error) {
	if len(ids) == 0 {
		return nil, errors.New("backup export: no credential selected")
	}
	return exportSyncable(s, ids, passphrase, DefaultArgon2Params, true)
}

// ExportUnmarked is ExportSyncable (ids nil) or ExportSelected (ids given)
// without marking anything backed up: the caller calls MarkBackedUp once
// the file is safely written, so that a failed write leaves BS unchanged.
func ExportUnmarked(s Store, ids [][]byte, passphrase []byte) ([]byte, error) {
	if ids != nil && len(ids) == 0 {
		return nil, errors.New("backup export: no credential selected")
	}
	return exportSyncable(s, ids, passphrase, DefaultArgon2Params, false)
}

// MarkBackedUp marks the stored credentials with the given IDs as backed
// up (BackupState); one deleted meanwhile is skipped, not brought back.
func MarkBackedUp(s Store, ids [][]byte) error {
	for _, id := range ids {
		c, err := s.Credential(id)
		if errors.Is(err, ErrNotFound) {
			continue
		} else if err != nil {
			return fmt.Errorf("backup export: %w", err)
		}
		if c.BackupState {
			continue
		}
		c.BackupState = true
		if err := s.PutCredential(c); err != nil {
			return fmt.Errorf("backup export: mark %s as backed up: %w", shortID(c.ID), err)
		}
	}
	return nil
}

func exportSyncable(s Store, ids [][]byte, passphrase []byte, p Argon2Params, mark bool) ([]byte, error) {
	if len(passphrase) == 0 {
		return nil, errors.New("backup export: empty passphrase")
	}
	if err := p.validate(); err != nil {
		return nil, fmt.Errorf("backup export: %w", err)
	}
	var creds []*Credential
	if ids == nil {
		all, err := s.Credentials()
		if err != nil {
			return nil, fmt.Errorf("backup export: %w", err)
		}
		for _, c := range all {
			if c.BackupEligible {
				creds = append(creds, c)
			}
		}
	} else {
		for _, id := range ids {
			c, err := s.Credential(id)
			if err != nil {
				return nil, fmt.Errorf("backup export: credential %s: %w", shortID(id), err)
			}
			if !c.BackupEligible {
				return nil, &DeviceBoundError{ID: c.ID, RPID: c.RPID}
			}
			creds = append(creds, c)
		}
	}
	doc := backupDoc{Version: backupDocVersion}
	for _, c := range creds {
		n, err := s.SignCount(c.ID)
		if err != nil {
			return nil, fmt.Errorf("backup export: %w", err)
		}
		e := c.Clone()
		e.BackupState = true
		doc.Entries = append(doc.Entries, backupEntry{Credential: e, SignCount: n})
	}
	out, err := sealBackup(&doc, passphrase, p)
	if err != nil {
		return nil, fmt.Errorf("backup export: %w", err)
	}

	for _, c := range creds {
		if c.BackupState || !mark {
			continue
		}
		// Re-read so a credential deleted meanwhile is not brought back.
		c, err := s.Credential(c.ID)
		if errors.Is(err, ErrNotFound) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("backup export: %w", err)
		}
		c.BackupState = true
		if err := s.PutCredential(c); err != nil {
			return nil, fmt.Errorf("backup export: mark %s as backed up: %w", shortID(c.ID), err)
		}
	}
	return out, nil
}

// MaxImportArgon2 bounds the argon2id cost a backup file may ask of Import:
// the header is read before anything is authenticated, so a crafted file
// could otherwise make vkey allocate gigabytes or compute for minutes.
// vkey writes DefaultArgon2Params (64 MiB, 3 passes); the bounds leave room
// for files made with RFC 9106's stronger settings short of its 2 GiB one.
var MaxImportArgon2 = Argon2Params{Time: 16, Memory: 1024 * 1024, Threads: 16}

// ErrBackupTooCostly is returned by Import for a backup file whose argon2id
// parameters exceed MaxImportArgon2.
var ErrBackupTooCostly = errors.New("backup file asks for more argon2id memory or time than vkey accepts")

// importable checks p against MaxImportArgon2.
func (p Argon2Params) importable() error {
	m := MaxImportArgon2
	if p.Memory > m.Memory || p.Time > m.Time || p.Threads > m.Threads {
		return fmt.Errorf("%w (it asks for %d MiB, %d passes, %d lanes; the limit is %d MiB, %d passes, %d lanes; files written by vkey use %d MiB): re-export it with vkey",
			ErrBackupTooCostly, p.Memory/1024, p.Time, p.Threads, m.Memory/1024, m.Time, m.Threads, DefaultArgon2Params.Memory/1024)
	}
	return nil
}

// sealBackup encodes and encrypts doc into the backup file format.
func sealBackup(doc *backupDoc, passphrase []byte, p Argon2Params) ([]byte, error) {
	em, err := encMode()
	if err != nil {
		return nil, err
	}
	plain, err := em.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	defer clear(plain)
	salt := make([]byte, backupSaltSize)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("salt: %w", err)
	}
	header := make([]byte, 0, 64)
	header = append(header, backupMagic[:]...)
	header = binary.BigEndian.AppendUint16(header, backupVersion)
	header = binary.BigEndian.AppendUint32(header, p.Time)
	header = binary.BigEndian.AppendUint32(header, p.Memory)
	header = append(header, p.Threads, byte(len(salt)))
	header = append(header, salt...)
	nonce := make([]byte, gcmNonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("nonce: %w", err)
	}
	header = append(header, nonce...)
	key := p.derive(passphrase, salt)
	defer clear(key)
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	return aead.Seal(header, nonce, plain, header), nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// openBackup checks the header and decrypts data.
func openBackup(data, passphrase []byte) (*backupDoc, error) {
	const fixed = len(backupMagic) + 2 + 4 + 4 + 1 + 1
	if len(data) < fixed || !bytes.Equal(data[:len(backupMagic)], backupMagic[:]) {
		return nil, ErrBadBackup
	}
	if v := binary.BigEndian.Uint16(data[len(backupMagic):]); v != backupVersion {
		return nil, fmt.Errorf("%w: format version %d is not supported", ErrBadBackup, v)
	}
	p := Argon2Params{
		Time:    binary.BigEndian.Uint32(data[10:]),
		Memory:  binary.BigEndian.Uint32(data[14:]),
		Threads: data[18],
	}
	saltLen := int(data[19])
	if err := p.validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadBackup, err)
	}
	if err := p.importable(); err != nil {
		return nil, err
	}
	if saltLen < 8 {
		return nil, fmt.Errorf("%w: salt too short", ErrBadBackup)
	}
	headerLen := fixed + saltLen + gcmNonceSize
	if len(data) < headerLen+16 {
		return nil, ErrBadBackup
	}
	salt := data[fixed : fixed+saltLen]
	nonce := data[fixed+saltLen : headerLen]
	key := p.derive(passphrase, salt)
	defer clear(key)
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	plain, err := aead.Open(nil, nonce, data[headerLen:], data[:headerLen])
	if err != nil {
		return nil, ErrWrongPassphrase
	}
	defer clear(plain)
	dm, err := decMode()
	if err != nil {
		return nil, err
	}
	var doc backupDoc
	if err := dm.Unmarshal(plain, &doc); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadBackup, err)
	}
	if doc.Version != backupDocVersion {
		return nil, fmt.Errorf("%w: content version %d is not supported", ErrBadBackup, doc.Version)
	}
	return &doc, nil
}

// ImportItem is one credential of an import, with what happened to it.
type ImportItem struct {
	// ID is the credential ID.
	ID []byte
	// RPID and UserName identify the credential for the user.
	RPID, UserName string
	// Reason says why it was skipped or refused (empty when added).
	Reason string
}

// ImportReport lists what Import did with each credential of the file.
type ImportReport struct {
	// Added credentials are new on this key.
	Added []ImportItem
	// Skipped credentials were already here; their counter was raised if
	// the file's was higher.
	Skipped []ImportItem
	// Refused credentials were not imported (not backup-eligible, a
	// device-bound credential with the same ID exists, storage full, ...).
	Refused []ImportItem
}

// Import merges the credentials of a backup file made by ExportSyncable
// into s. A credential already present (same ID) is kept, with the higher
// of the two signature counters; one without BackupEligible in the file is
// refused. A wrong passphrase yields ErrWrongPassphrase and changes
// nothing.
func Import(s Store, data, passphrase []byte) (ImportReport, error) {
	var rep ImportReport
	doc, err := openBackup(data, passphrase)
	if err != nil {
		return rep, fmt.Errorf("backup import: %w", err)
	}
	for _, e := range doc.Entries {
		c := e.Credential
		if c == nil {
			rep.Refused = append(rep.Refused, ImportItem{Reason: "empty entry"})
			continue
		}
		item := ImportItem{ID: append([]byte(nil), c.ID...), RPID: c.RPID, UserName: c.UserName}
		refuse := func(reason string) {
			item.Reason = reason
			rep.Refused = append(rep.Refused, item)
		}
		switch {
		case !c.BackupEligible:
			refuse("device-bound credential (not backup eligible): refused")
			continue
		case len(c.ID) == 0 || c.RPID == "" || len(c.KeyBlob) == 0 || c.Provider == "":
			refuse("incomplete credential")
			continue
		}
		existing, err := s.Credential(c.ID)
		switch {
		case err == nil && !existing.BackupEligible:
			refuse("a device-bound credential with this ID exists on this key")
			continue
		case err == nil:
			item.Reason = "already present"
		case errors.Is(err, ErrNotFound):
			nc := c.Clone()
			nc.BackupState = true
			if err := s.PutCredential(nc); err != nil {
				if errors.Is(err, ErrFull) {
					refuse("credential storage is full")
					continue
				}
				return rep, fmt.Errorf("backup import: store %s: %w", shortID(c.ID), err)
			}
		default:
			return rep, fmt.Errorf("backup import: %w", err)
		}
		cur, err := s.SignCount(c.ID)
		if err != nil {
			return rep, fmt.Errorf("backup import: %w", err)
		}
		if e.SignCount > cur {
			if err := s.SetSignCount(c.ID, e.SignCount); err != nil {
				return rep, fmt.Errorf("backup import: counter of %s: %w", shortID(c.ID), err)
			}
			if item.Reason != "" {
				item.Reason += fmt.Sprintf("; counter raised to %d", e.SignCount)
			}
		}
		if item.Reason == "" {
			rep.Added = append(rep.Added, item)
		} else {
			rep.Skipped = append(rep.Skipped, item)
		}
	}
	return rep, nil
}
