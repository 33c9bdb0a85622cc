package keystore

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/fxamacker/cbor/v2"
)

// File names inside a state folder.
const (
	// StateFileName is the encrypted state document.
	StateFileName = "state.vkey"
	// LockFileName is the lock file; while a store is open it holds the PID
	// of the process that owns it.
	LockFileName = "lock"
	tempPrefix   = ".state.tmp-"
)

// stateMagic opens every state file; stateContainerVersion is the version of
// the binary container (header layout and cipher), stateDocVersion the
// version of the CBOR document inside it (see migrateState).
var stateMagic = [8]byte{'V', 'K', 'E', 'Y', 'S', 'T', 'A', 'T'}

const (
	stateContainerVersion = 1
	stateDocVersion       = 1
	gcmNonceSize          = 12
	stateHeaderSize       = len(stateMagic) + 2 + gcmNonceSize
	// MasterKeySize is the length of the master key (AES-256).
	MasterKeySize = 32
)

// DefaultReserveBlock is the initial number of signature counter values a
// File store reserves on disk ahead of use for one credential.
const DefaultReserveBlock = 1024

// maxReserveBlock caps the geometric growth of a credential's reservation.
const maxReserveBlock = 1 << 24

// FileOptions configures OpenFile.
type FileOptions struct {
	// MasterKey is the 32-byte AES-256-GCM key that encrypts the state (see
	// ChooseMasterKey). Required.
	MasterKey []byte
	// MaxDiscoverable is the number of discoverable credentials the store
	// holds (DefaultMaxDiscoverable if <= 0).
	MaxDiscoverable int
	// ReserveBlock is how many signature counter values are reserved on disk
	// at a time for a credential (DefaultReserveBlock if 0). While one
	// process keeps using a credential, each new reservation doubles (up to
	// 2^24), so a busy credential costs a logarithmic number of writes and a
	// crash skips at most about twice the values used since the last open.
	ReserveBlock uint32
}

// LockedError is returned by OpenFile when another process holds the state
// folder's lock.
type LockedError struct {
	// Dir is the state folder.
	Dir string
	// PID is the process that holds the lock (0 if it could not be read).
	PID int
}

// Error implements error.
func (e *LockedError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("the vkey state in %s is in use by process %d; stop it or choose another state folder", e.Dir, e.PID)
	}
	return fmt.Sprintf("the vkey state in %s is in use by another process; stop it or choose another state folder", e.Dir)
}

// CorruptError is returned by OpenFile when the state file cannot be
// decrypted (wrong master key, tampering) or parsed. The file is never
// modified in that case.
type CorruptError struct {
	// Path is the state file.
	Path string
	// Err is the underlying cause.
	Err error
}

// Error implements error.
func (e *CorruptError) Error() string {
	return fmt.Sprintf("state file %s cannot be decrypted or is damaged; it was left untouched for recovery", e.Path)
}

// Unwrap returns the underlying cause.
func (e *CorruptError) Unwrap() error { return e.Err }

// ErrCounterExhausted is returned by NextSignCount when a counter has
// reached 2^32-1 and cannot grow further without repeating.
var ErrCounterExhausted = errors.New("keystore: signature counter exhausted")

// counterRec is the persisted form of one signature counter: its ceiling,
// the largest value that may have been handed out.
type counterRec struct {
	Key      []byte `cbor:"1,keyasint"`
	Reserved uint32 `cbor:"2,keyasint"`
}

// stateDoc is the CBOR document inside the state file.
type stateDoc struct {
	Version     int           `cbor:"1,keyasint"`
	Identity    *Identity     `cbor:"2,keyasint,omitempty"`
	Credentials []*Credential `cbor:"3,keyasint,omitempty"`
	Counters    []counterRec  `cbor:"4,keyasint,omitempty"`
	PIN         PINState      `cbor:"5,keyasint"`
	Config      Config        `cbor:"6,keyasint"`
	LargeBlob   []byte        `cbor:"7,keyasint,omitempty"`
}

// migrateState upgrades a document written by an older vkey to
// stateDocVersion, one version at a time. Add a case per format change.
func migrateState(d *stateDoc) error {
	if d.Version > stateDocVersion {
		return fmt.Errorf("state format version %d is newer than this vkey understands (%d)", d.Version, stateDocVersion)
	}
	for d.Version < stateDocVersion {
		switch d.Version {
		default:
			return fmt.Errorf("no migration from state format version %d", d.Version)
		}
	}
	return nil
}

// counter is a signature counter in memory.
type counter struct {
	value    uint32 // last value handed out
	reserved uint32 // ceiling persisted on disk (value <= reserved)
	block    uint32 // size of the next reservation
}

// File is a Store kept in an encrypted, crash-safe state file inside a
// folder it locks exclusively.
type File struct {
	mu              sync.Mutex
	dir             string
	path            string
	aead            cipher.AEAD
	lock            *os.File
	closed          bool
	maxDiscoverable int
	block           uint32

	fileState
}

// fileState is what the state file holds, in memory; a failed write
// restores a copy of it (see mutate).
type fileState struct {
	identity  *Identity
	creds     map[string]*Credential
	counters  map[[32]byte]*counter
	pin       PINState
	config    Config
	largeBlob []byte
}

var _ Store = (*File)(nil)

func encMode() (cbor.EncMode, error) {
	o := cbor.CTAP2EncOptions()
	o.Time = cbor.TimeRFC3339Nano
	return o.EncMode()
}

func decMode() (cbor.DecMode, error) {
	return cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		TagsMd:           cbor.TagsForbidden,
		MaxNestedLevels:  16,
		MaxArrayElements: 1 << 20,
		MaxMapPairs:      1 << 20,
	}.DecMode()
}

// OpenFile opens (or creates) the store in dir. It creates dir with mode
// 0700, takes an exclusive lock (a *LockedError names the holder), and loads
// the state file; a state file that cannot be decrypted or parsed yields a
// *CorruptError and is left untouched.
func OpenFile(dir string, opts FileOptions) (*File, error) {
	if len(opts.MasterKey) != MasterKeySize {
		return nil, fmt.Errorf("open state: master key must be %d bytes, got %d", MasterKeySize, len(opts.MasterKey))
	}
	block, err := aes.NewCipher(opts.MasterKey)
	if err != nil {
		return nil, fmt.Errorf("open state: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("open state: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open state: create folder: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open state: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	f := &File{
		dir:             dir,
		path:            filepath.Join(dir, StateFileName),
		aead:            aead,
		lock:            lock,
		maxDiscoverable: opts.MaxDiscoverable,
		block:           opts.ReserveBlock,
	}
	if f.maxDiscoverable <= 0 {
		f.maxDiscoverable = DefaultMaxDiscoverable
	}
	if f.block == 0 {
		f.block = DefaultReserveBlock
	}
	f.wipe()
	if err := f.load(); err != nil {
		unlockDir(lock)
		return nil, err
	}
	removeStaleTemps(dir)
	return f, nil
}

// lockDir takes the exclusive lock of dir and writes our PID into it.
func lockDir(dir string) (*os.File, error) {
	p := filepath.Join(dir, LockFileName)
	lf, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open state: lock file: %w", err)
	}
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer lf.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			b, _ := os.ReadFile(p)
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			return nil, &LockedError{Dir: dir, PID: pid}
		}
		return nil, fmt.Errorf("open state: lock %s: %w", p, err)
	}
	if err := lf.Truncate(0); err == nil {
		_, _ = lf.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return lf, nil
}

func unlockDir(lf *os.File) {
	_ = syscall.Flock(int(lf.Fd()), syscall.LOCK_UN)
	_ = lf.Close()
}

// removeStaleTemps deletes temporary files a crashed writer left behind;
// they never hold the only copy of anything (the rename is the commit).
func removeStaleTemps(dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tempPrefix) {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

func (f *File) wipe() {
	f.creds = map[string]*Credential{}
	f.counters = map[[32]byte]*counter{}
	f.pin = PINState{Retries: DefaultPINRetries}
	f.config = Config{}
	f.largeBlob = nil
}

// load reads the state file, if there is one.
func (f *File) load() error {
	data, err := os.ReadFile(f.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open state: read %s: %w", f.path, err)
	}
	doc, err := f.decrypt(data)
	if err != nil {
		return &CorruptError{Path: f.path, Err: err}
	}
	f.identity = doc.Identity
	for _, c := range doc.Credentials {
		if c == nil {
			return &CorruptError{Path: f.path, Err: errors.New("nil credential")}
		}
		f.creds[string(c.ID)] = c
	}
	for _, r := range doc.Counters {
		if len(r.Key) != 32 {
			return &CorruptError{Path: f.path, Err: errors.New("bad counter key")}
		}
		// Every value up to the persisted ceiling may have been handed out
		// before a crash: start above it.
		f.counters[[32]byte(r.Key)] = &counter{value: r.Reserved, reserved: r.Reserved, block: f.block}
	}
	f.pin = doc.PIN
	f.config = doc.Config
	f.largeBlob = doc.LargeBlob
	return nil
}

func (f *File) decrypt(data []byte) (*stateDoc, error) {
	if len(data) < stateHeaderSize+f.aead.Overhead() {
		return nil, errors.New("file too short")
	}
	if !bytes.Equal(data[:len(stateMagic)], stateMagic[:]) {
		return nil, errors.New("not a vkey state file")
	}
	if v := binary.BigEndian.Uint16(data[len(stateMagic):]); v != stateContainerVersion {
		return nil, fmt.Errorf("unknown container version %d", v)
	}
	header := data[:stateHeaderSize]
	nonce := header[len(stateMagic)+2:]
	plain, err := f.aead.Open(nil, nonce, data[stateHeaderSize:], header)
	if err != nil {
		return nil, fmt.Errorf("decrypt: %w", err)
	}
	dm, err := decMode()
	if err != nil {
		return nil, err
	}
	var doc stateDoc
	if err := dm.Unmarshal(plain, &doc); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	if err := migrateState(&doc); err != nil {
		return nil, err
	}
	return &doc, nil
}

// persistLocked writes the whole state atomically: temp file, fsync,
// rename, fsync of the folder.
func (f *File) persistLocked() error {
	if f.closed {
		return errors.New("keystore: store is closed")
	}
	doc := stateDoc{
		Version:   stateDocVersion,
		Identity:  f.identity,
		PIN:       f.pin,
		Config:    f.config,
		LargeBlob: f.largeBlob,
	}
	for _, c := range f.creds {
		doc.Credentials = append(doc.Credentials, c)
	}
	SortOldestFirst(doc.Credentials)
	for k, c := range f.counters {
		doc.Counters = append(doc.Counters, counterRec{Key: append([]byte(nil), k[:]...), Reserved: c.reserved})
	}
	em, err := encMode()
	if err != nil {
		return err
	}
	plain, err := em.Marshal(&doc)
	if err != nil {
		return fmt.Errorf("keystore: encode state: %w", err)
	}
	out := make([]byte, stateHeaderSize, stateHeaderSize+len(plain)+f.aead.Overhead())
	copy(out, stateMagic[:])
	binary.BigEndian.PutUint16(out[len(stateMagic):], stateContainerVersion)
	if _, err := rand.Read(out[len(stateMagic)+2 : stateHeaderSize]); err != nil {
		return fmt.Errorf("keystore: nonce: %w", err)
	}
	out = f.aead.Seal(out, out[len(stateMagic)+2:stateHeaderSize], plain, out[:stateHeaderSize])
	clear(plain)
	if err := writeFileAtomic(f.dir, StateFileName, out); err != nil {
		return fmt.Errorf("keystore: write state: %w", err)
	}
	return nil
}

// writeFileAtomic replaces dir/name with data (mode 0600) so that a crash
// leaves either the old or the new content.
func writeFileAtomic(dir, name string, data []byte) error {
	tmp, err := os.CreateTemp(dir, tempPrefix)
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			_ = tmp.Close()
			_ = os.Remove(tmpName)
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmpName, filepath.Join(dir, name)); err != nil {
		return err
	}
	ok = true
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync folder: %w", err)
	}
	return nil
}

// snapshotLocked copies the in-memory state for restoreLocked: the maps
// are copied, and the counters in them, since changes update those in
// place; the rest is replaced, never modified.
func (f *File) snapshotLocked() fileState {
	s := f.fileState
	s.creds = make(map[string]*Credential, len(f.creds))
	maps.Copy(s.creds, f.creds)
	s.counters = make(map[[32]byte]*counter, len(f.counters))
	for k, v := range f.counters {
		c := *v
		s.counters[k] = &c
	}
	return s
}

func (f *File) restoreLocked(s fileState) { f.fileState = s }

// mutate applies change and persists the result; if either fails the
// in-memory state is restored, so memory never claims what disk lacks.
func (f *File) mutate(change func() error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return errors.New("keystore: store is closed")
	}
	s := f.snapshotLocked()
	if err := change(); err != nil {
		f.restoreLocked(s)
		return err
	}
	if err := f.persistLocked(); err != nil {
		f.restoreLocked(s)
		return err
	}
	return nil
}

// Dir returns the state folder.
func (f *File) Dir() string { return f.dir }

// Identity implements Store.
func (f *File) Identity() (*Identity, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.identity == nil {
		return nil, ErrNotFound
	}
	return cloneIdentity(f.identity), nil
}

func cloneIdentity(id *Identity) *Identity {
	c := *id
	for _, b := range []*[]byte{&c.WrapKey, &c.AttestationCAKey, &c.AttestationCACert, &c.AttestationKey, &c.AttestationCert} {
		if *b != nil {
			*b = append([]byte(nil), (*b)...)
		}
	}
	return &c
}

// SetIdentity implements Store.
func (f *File) SetIdentity(id *Identity) error {
	if id == nil {
		return errors.New("keystore: nil identity")
	}
	return f.mutate(func() error {
		f.identity = cloneIdentity(id)
		return nil
	})
}

// PutCredential implements Store.
func (f *File) PutCredential(c *Credential) error {
	if c == nil {
		return errors.New("keystore: nil credential")
	}
	return f.mutate(func() error {
		if _, exists := f.creds[string(c.ID)]; !exists && c.Discoverable && f.discoverableLocked() >= f.maxDiscoverable {
			return ErrFull
		}
		f.creds[string(c.ID)] = c.Clone()
		return nil
	})
}

func (f *File) discoverableLocked() int {
	n := 0
	for _, c := range f.creds {
		if c.Discoverable {
			n++
		}
	}
	return n
}

// Credential implements Store.
func (f *File) Credential(id []byte) (*Credential, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.creds[string(id)]
	if !ok {
		return nil, ErrNotFound
	}
	return c.Clone(), nil
}

// Credentials implements Store.
func (f *File) Credentials() ([]*Credential, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*Credential, 0, len(f.creds))
	for _, c := range f.creds {
		out = append(out, c.Clone())
	}
	SortOldestFirst(out)
	return out, nil
}

// DeleteCredential implements Store.
func (f *File) DeleteCredential(id []byte) error {
	return f.mutate(func() error {
		if _, ok := f.creds[string(id)]; !ok {
			return ErrNotFound
		}
		delete(f.creds, string(id))
		delete(f.counters, CounterKey(id))
		return nil
	})
}

// RemainingDiscoverable implements Store.
func (f *File) RemainingDiscoverable() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.maxDiscoverable - f.discoverableLocked()
}

// NextSignCount implements Store. It increments in memory and writes the
// state only when the value crosses the ceiling reserved on disk, reserving
// a new block ahead; after a crash the counter resumes above the ceiling,
// so no value is ever handed out twice.
func (f *File) NextSignCount(id []byte) (uint32, error) {
	k := CounterKey(id)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0, errors.New("keystore: store is closed")
	}
	c := f.counters[k]
	if c == nil {
		c = &counter{block: f.block}
		f.counters[k] = c
	}
	if c.value == math.MaxUint32 {
		return 0, ErrCounterExhausted
	}
	next := c.value + 1
	if next > c.reserved {
		old := *c
		ceiling := uint64(c.value) + uint64(c.block)
		if ceiling > math.MaxUint32 {
			ceiling = math.MaxUint32
		}
		c.reserved = uint32(ceiling)
		if err := f.persistLocked(); err != nil {
			*c = old
			return 0, err
		}
		// This credential is busy: reserve more next time (bounded by the
		// number of values actually used, so a crash wastes little).
		if c.block < maxReserveBlock {
			c.block *= 2
		}
	}
	c.value = next
	return next, nil
}

// SignCount implements Store. After a restart it is the reserved ceiling,
// which may exceed the last value handed out before the restart (the
// values in between are skipped, never reused).
func (f *File) SignCount(id []byte) (uint32, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c := f.counters[CounterKey(id)]; c != nil {
		return c.value, nil
	}
	return 0, nil
}

// SetSignCount implements Store. The new value is persisted before it
// returns.
func (f *File) SetSignCount(id []byte, n uint32) error {
	k := CounterKey(id)
	return f.mutate(func() error {
		f.counters[k] = &counter{value: n, reserved: n, block: f.block}
		return nil
	})
}

// PINState implements Store.
func (f *File) PINState() (PINState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.pin
	if s.Hash != nil {
		s.Hash = append([]byte(nil), s.Hash...)
	}
	return s, nil
}

// SetPINState implements Store.
func (f *File) SetPINState(s PINState) error {
	return f.mutate(func() error {
		f.pin = s
		if s.Hash != nil {
			f.pin.Hash = append([]byte(nil), s.Hash...)
		}
		return nil
	})
}

// Config implements Store.
func (f *File) Config() (Config, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.config
	c.MinPINLengthRPIDs = append([]string(nil), c.MinPINLengthRPIDs...)
	return c, nil
}

// SetConfig implements Store.
func (f *File) SetConfig(c Config) error {
	return f.mutate(func() error {
		f.config = c
		f.config.MinPINLengthRPIDs = append([]string(nil), c.MinPINLengthRPIDs...)
		return nil
	})
}

// LargeBlobArray implements Store.
func (f *File) LargeBlobArray() ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.largeBlob == nil {
		return nil, nil
	}
	return append([]byte(nil), f.largeBlob...), nil
}

// SetLargeBlobArray implements Store.
func (f *File) SetLargeBlobArray(b []byte) error {
	return f.mutate(func() error {
		f.largeBlob = append([]byte{}, b...)
		return nil
	})
}

// Reset implements Store.
func (f *File) Reset() error {
	return f.mutate(func() error {
		f.wipe()
		if f.identity != nil {
			k := make([]byte, 32)
			if _, err := rand.Read(k); err != nil {
				return fmt.Errorf("keystore: reset: %w", err)
			}
			id := cloneIdentity(f.identity)
			id.WrapKey = k
			f.identity = id
		}
		return nil
	})
}

// Close implements Store. Counter reservations are already on disk, so
// Close only releases the lock; later calls fail.
func (f *File) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	f.closed = true
	_ = f.lock.Truncate(0)
	unlockDir(f.lock)
	return nil
}
