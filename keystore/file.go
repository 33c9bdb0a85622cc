package keystore

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fxamacker/cbor/v2"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// File names inside a state folder.
const (
	// StateFileName is the transactional store (a bbolt database) whose
	// records are each encrypted under the master key.
	StateFileName = "state.db"
	// LegacyStateFileName is the single encrypted document older versions
	// wrote; OpenFile converts it once into StateFileName.
	LegacyStateFileName = "state.vkey"
	// LockFileName is the lock file; while a store is open it holds the PID
	// of the process that owns it.
	LockFileName = "lock"
	tempPrefix   = ".state.tmp-"
	// migratingFileName is the store being built from a legacy state; the
	// rename to StateFileName commits the conversion.
	migratingFileName = "state.db.migrating"
)

const (
	// MasterKeySize is the length of the master key (AES-256).
	MasterKeySize = 32
	// storeFormat is the version of the record layout in StateFileName:
	// 3 added bucketNDRP. A format-2 store is upgraded when opened.
	storeFormat = 3
)

// DefaultReserveBlock is the initial number of signature counter values a
// File store reserves on disk ahead of use for one counter.
const DefaultReserveBlock = 1024

// maxReserveBlock caps the geometric growth of a counter's reservation.
const maxReserveBlock = 1 << 24

// Unlimited as FileOptions.MaxDiscoverable or NewMemory's argument lets a
// store hold any number of discoverable credentials.
const Unlimited = -1

// unlimitedRemaining is what RemainingDiscoverable reports for a store
// without a limit: an estimate, as CTAP 2.1 section 6.4 allows
// (remainingDiscoverableCredentials), that every client reads as "plenty".
const unlimitedRemaining = math.MaxInt32

// FileOptions configures OpenFile.
type FileOptions struct {
	// MasterKey is the 32-byte AES-256-GCM key that encrypts every record
	// (see ChooseMasterKey). Required.
	MasterKey []byte
	// MaxDiscoverable is the number of discoverable credentials the store
	// holds: DefaultMaxDiscoverable if 0, no limit if negative (Unlimited).
	MaxDiscoverable int
	// ReserveBlock is how many signature counter values are reserved on disk
	// at a time for a counter (DefaultReserveBlock if 0). While one process
	// keeps using a counter, each new reservation doubles (up to 2^24), so a
	// busy counter costs a logarithmic number of writes and a crash skips at
	// most about twice the values used since the last open.
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

// CorruptError is returned by OpenFile when the state cannot be decrypted
// (wrong master key, tampering) or parsed. The file is never modified in
// that case.
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

// ErrClosed is returned by every method of a closed store.
var ErrClosed = errors.New("keystore: store is closed")

// Buckets of the store. Every value is nonce || AES-256-GCM(master key,
// plaintext, additional data = bucket name || 0 || key), so that a record
// moved to another key or bucket does not decrypt. Keys are MACs under a
// key derived from the master key, so the file does not tell whether it
// holds a given credential ID or relying party.
var (
	// bucketMeta: format, identity, pin, config, largeblob, global, ndisc.
	bucketMeta = []byte("meta")
	// bucketCreds: credKey(id) -> Credential (CBOR).
	bucketCreds = []byte("creds")
	// bucketRP: rpTag(rpIdHash) || credKey(id) -> "" for every
	// discoverable credential (discoverable getAssertion, credMgmt).
	bucketRP = []byte("rp")
	// bucketUser: userTag(rpIdHash, userID) || credKey(id) -> "" for every
	// discoverable credential (replacement, CTAP 2.1 section 6.1.2 step 17).
	bucketUser = []byte("user")
	// bucketCounters: credKey(id) -> counter record, for stored credentials
	// and the tombstones of deleted non-discoverable ones.
	bucketCounters = []byte("ctr")
	// bucketNDRP: rpTag(rpIdHash) || credKey(id) -> "" for every stored
	// non-discoverable credential (the control API's list of one RP).
	bucketNDRP = []byte("ndrp")

	allBuckets = [][]byte{bucketMeta, bucketCreds, bucketRP, bucketUser, bucketCounters, bucketNDRP}

	metaFormat    = []byte("format")
	metaIdentity  = []byte("identity")
	metaPIN       = []byte("pin")
	metaConfig    = []byte("config")
	metaLargeBlob = []byte("largeblob")
	metaGlobal    = []byte("global")
	metaNDisc     = []byte("ndisc")
)

const (
	credKeySize = 32
	tagSize     = 16
)

// counterRecord is a persisted counter: the ceiling (the largest value that
// may have been handed out) and whether the credential was deleted (a
// tombstone: its ID is refused for good, its counter is kept so no value is
// handed out twice should it be restored from a backup).
type counterRecord struct {
	ceiling uint32
	deleted bool
}

func (r counterRecord) encode() []byte {
	b := binary.BigEndian.AppendUint32(nil, r.ceiling)
	if r.deleted {
		return append(b, 1)
	}
	return append(b, 0)
}

func decodeCounter(b []byte) (counterRecord, error) {
	if len(b) != 5 || b[4] > 1 {
		return counterRecord{}, errors.New("bad counter record")
	}
	return counterRecord{ceiling: binary.BigEndian.Uint32(b), deleted: b[4] == 1}, nil
}

// counter is a signature counter in memory.
type counter struct {
	value    uint32 // last value handed out
	reserved uint32 // ceiling persisted on disk (value <= reserved)
	block    uint32 // size of the next reservation
}

// File is a Store kept in a transactional, crash-safe database (bbolt)
// inside a folder it locks exclusively. Every operation reads or writes
// only the records it needs, and every write is one transaction (one
// commit, fsynced) whatever the number of stored credentials. Readers run
// concurrently with a committing writer; no Go lock is held across a
// commit except the one that orders counter reservations.
type File struct {
	dir             string
	path            string
	db              *bolt.DB
	aead            cipher.AEAD
	macKey          []byte
	macs            sync.Pool // of hash.Hash: HMAC-SHA-256 under macKey
	lock            *os.File
	maxDiscoverable int
	block           uint32
	closed          atomic.Bool

	// leaseMu orders counter reservations (slow path of NextSignCount).
	leaseMu sync.Mutex
	// mu guards the counter cache; never held across a commit.
	mu sync.Mutex
	// counters caches the counter in use for a credential key: the
	// credential's own, or global for credentials not in the store.
	// Both are keyed by credential ID, so that the common case costs no MAC.
	counters map[string]*counter
	global   *counter
	// unstored remembers, up to unstoredCacheSize, IDs known not to be
	// stored, whose signatures the global counter counts.
	unstored map[string]struct{}

	// cache holds recently read credentials, by ID, decrypted: reads
	// (getAssertion with an allowList) cost what they do in memory.
	cache credCache
}

// unstoredCacheSize bounds File.unstored.
const unstoredCacheSize = 4096

// credCacheSize bounds the credentials File keeps decrypted in memory.
const credCacheSize = 256

// credCache is a small cache of stored credentials. A write to the
// credentials clears it (bumping gen) after its commit; a reader adds
// what it read only if no write happened since it started, so the cache
// never holds a value older than the store.
type credCache struct {
	mu    sync.Mutex
	gen   uint64
	creds map[string]*Credential
}

func (c *credCache) get(id []byte) (*Credential, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.creds[string(id)].Clone(), c.gen
}

func (c *credCache) add(gen uint64, cred *Credential) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if c.creds == nil || len(c.creds) >= credCacheSize {
		c.creds = make(map[string]*Credential, credCacheSize)
	}
	c.creds[string(cred.ID)] = cred.Clone()
}

// invalidate is called after every committed change to credentials.
func (c *credCache) invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.creds = nil
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

var (
	storeEnc cbor.EncMode
	storeDec cbor.DecMode
)

func init() {
	var err error
	if storeEnc, err = encMode(); err != nil {
		panic(err)
	}
	if storeDec, err = decMode(); err != nil {
		panic(err)
	}
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != MasterKeySize {
		return nil, fmt.Errorf("master key must be %d bytes, got %d", MasterKeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// OpenFile opens (or creates) the store in dir. It creates dir with mode
// 0700 if absent (an existing folder must be a vkey state or empty, and
// private: its mode is never changed), takes an exclusive lock (a
// *LockedError names the holder), and opens the store; a state that cannot
// be decrypted or parsed yields a *CorruptError and is left untouched. A
// state in the legacy single-file format is converted once, atomically.
func OpenFile(dir string, opts FileOptions) (*File, error) {
	if _, err := newAEAD(opts.MasterKey); err != nil {
		return nil, fmt.Errorf("open state: %w", err)
	}
	if err := PrepareStateDir(dir); err != nil {
		return nil, err
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	f, err := openLocked(dir, lock, opts)
	if err != nil {
		unlockDir(lock)
		return nil, err
	}
	return f, nil
}

// stateFiles are the names a vkey state folder may hold.
var stateFiles = map[string]bool{
	StateFileName: true, LegacyStateFileName: true, LockFileName: true, migratingFileName: true,
	MasterKeySourceFileName: true, PassphraseParamsFileName: true, SealedKeyFileName: true, KeyFileName: true,
}

// PrepareStateDir makes dir ready to hold a vkey state: it creates it
// (mode 0700) when absent; an existing folder must be owned by this user,
// not writable by others, and either empty or a vkey state. It never changes the
// mode of a folder it did not create.
func PrepareStateDir(dir string) error {
	st, err := os.Lstat(dir)
	if errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create state folder: %w", err)
		}
		// MkdirAll applies the umask, which can only remove bits; the
		// folder is ours, so make it exactly 0700.
		return os.Chmod(dir, 0o700)
	}
	if err != nil {
		return fmt.Errorf("state folder: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("state folder %s is not a folder; choose another with --state", dir)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != os.Getuid() {
		return fmt.Errorf("state folder %s belongs to another user; choose a folder of yours with --state", dir)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("state folder: %w", err)
	}
	vkey := false
	for _, e := range ents {
		if stateFiles[e.Name()] {
			vkey = true
			break
		}
	}
	if len(ents) > 0 && !vkey {
		return fmt.Errorf("%s is not empty and holds no vkey state; choose an empty or new folder with --state", dir)
	}
	// Files inside are 0600 and every secret is encrypted; a folder others
	// may write to would let them replace or remove the state.
	if st.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("state folder %s is writable by other users (mode %#o); run `chmod 700 %s` or choose another folder with --state", dir, st.Mode().Perm(), dir)
	}
	return nil
}

// HasState reports whether dir holds a vkey state (in either format).
func HasState(dir string) bool {
	for _, n := range []string{StateFileName, LegacyStateFileName} {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			return true
		}
	}
	return false
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
	_ = lf.Truncate(0)
	_ = syscall.Flock(int(lf.Fd()), syscall.LOCK_UN)
	_ = lf.Close()
}

// removeStaleTemps deletes temporary files a crashed writer left behind;
// they never hold the only copy of anything (a rename is the commit).
func removeStaleTemps(dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tempPrefix) || e.Name() == migratingFileName {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// openLocked opens the store of dir, whose lock the caller holds.
func openLocked(dir string, lock *os.File, opts FileOptions) (*File, error) {
	aead, err := newAEAD(opts.MasterKey)
	if err != nil {
		return nil, fmt.Errorf("open state: %w", err)
	}
	f := &File{
		dir:             dir,
		path:            filepath.Join(dir, StateFileName),
		aead:            aead,
		macKey:          deriveMACKey(opts.MasterKey),
		lock:            lock,
		maxDiscoverable: opts.MaxDiscoverable,
		block:           opts.ReserveBlock,
		counters:        map[string]*counter{},
	}
	if f.maxDiscoverable == 0 {
		f.maxDiscoverable = DefaultMaxDiscoverable
	}
	if f.block == 0 {
		f.block = DefaultReserveBlock
	}
	legacy := filepath.Join(dir, LegacyStateFileName)
	_, errNew := os.Stat(f.path)
	_, errOld := os.Stat(legacy)
	switch {
	case errNew == nil:
		// A converted state whose legacy file was not yet removed: the
		// rename of the new store was the commit, so it wins.
	case !errors.Is(errNew, os.ErrNotExist):
		return nil, fmt.Errorf("open state: %w", errNew)
	case errOld == nil:
		if err := f.migrate(legacy); err != nil {
			return nil, err
		}
	}
	removeStaleTemps(dir)
	if err := f.openDB(); err != nil {
		return nil, err
	}
	if errOld == nil {
		_ = os.Remove(legacy)
		_ = syncDir(dir)
	}
	return f, nil
}

func boltOptions() *bolt.Options {
	return &bolt.Options{
		Timeout:      time.Second, // our own lock is already held
		FreelistType: bolt.FreelistMapType,
	}
}

// openDB opens (creating when absent) the database and checks that the
// master key decrypts it.
func (f *File) openDB() error {
	_, statErr := os.Stat(f.path)
	if statErr != nil {
		db, err := f.boltOpen(false)
		if err != nil {
			return fmt.Errorf("open state: %w", err)
		}
		f.db = db
		if err := f.update(f.initTx); err != nil {
			_ = f.db.Close()
			_ = os.Remove(f.path)
			return fmt.Errorf("open state: create store: %w", err)
		}
		return nil
	}
	// Never write to a state before the master key has been checked: look
	// at it read-only first.
	before, _ := readHead(f.path)
	if err := checkFreelistSynced(before); err != nil {
		return &CorruptError{Path: f.path, Err: err}
	}
	db, err := f.boltOpen(true)
	if err != nil {
		return err
	}
	f.db = db
	err = f.view(f.checkTx)
	_ = f.db.Close()
	f.db = nil
	if err != nil {
		return &CorruptError{Path: f.path, Err: err}
	}
	if now, _ := readHead(f.path); !bytes.Equal(before, now) {
		return &CorruptError{Path: f.path, Err: errors.New("changed while being checked")}
	}
	if f.db, err = f.boltOpen(false); err != nil {
		return err
	}
	var current bool
	err = f.view(func(tx *bolt.Tx) error {
		b, err := f.get(tx, bucketMeta, metaFormat)
		current = len(b) == 2 && binary.BigEndian.Uint16(b) == storeFormat
		return err
	})
	if err != nil {
		err = &CorruptError{Path: f.path, Err: err}
	} else if !current {
		// One transaction: a failure (a full disk) leaves format 2 whole.
		if err = f.update(f.upgradeTx); err != nil {
			err = fmt.Errorf("open state: upgrading %s to store format %d: %w", f.path, storeFormat, err)
		}
	}
	if err != nil {
		_ = f.db.Close()
		f.db = nil
		return err
	}
	return nil
}

// boltOpen opens the database file. bbolt trusts the pages it maps: a
// damaged page can make it panic or read outside the mapping; both become
// a *CorruptError, and the file is closed (releasing bbolt's lock).
func (f *File) boltOpen(readOnly bool) (db *bolt.DB, err error) {
	var file *os.File
	opts := boltOptions()
	opts.ReadOnly = readOnly
	opts.OpenFile = func(name string, flag int, perm os.FileMode) (*os.File, error) {
		fh, err := os.OpenFile(name, flag, perm)
		file = fh
		return fh, err
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if file != nil {
				_ = file.Close()
			}
			db, err = nil, &CorruptError{Path: f.path, Err: fmt.Errorf("%v", r)}
		}
	}()
	db, err = bolt.Open(f.path, 0o600, opts)
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, &LockedError{Dir: f.dir}
	case err != nil:
		return nil, &CorruptError{Path: f.path, Err: err}
	}
	return db, nil
}

// readHead returns the two bbolt meta pages, to tell that a refused open
// wrote nothing.
func readHead(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	b := make([]byte, 2*os.Getpagesize())
	n, _ := fh.Read(b)
	return b[:n], nil
}

// checkFreelistSynced refuses meta pages that say the freelist was not
// written: this store always writes it, and without it bbolt rebuilds it by
// walking every page in a goroutine that panics on a damaged one.
func checkFreelistSynced(head []byte) error {
	// Each meta page: 16-byte page header, then magic, version, page size,
	// flags (4 bytes each), the root bucket (16), the freelist page id (8).
	const off = 16 + 4*4 + 16
	ps := os.Getpagesize()
	for _, at := range []int{0, ps} {
		if len(head) >= at+off+8 && binary.LittleEndian.Uint64(head[at+off:]) == math.MaxUint64 {
			return errors.New("store written without a freelist")
		}
	}
	return nil
}

// checkTx checks that the store is one this code understands and that the
// master key decrypts it.
func (f *File) checkTx(tx *bolt.Tx) error {
	b, err := f.get(tx, bucketMeta, metaFormat)
	if err != nil {
		return err
	}
	if len(b) != 2 {
		return errors.New("bad format record")
	}
	v := binary.BigEndian.Uint16(b)
	if v != storeFormat && v != 2 {
		return fmt.Errorf("store format %d is not one this vkey understands (%d)", v, storeFormat)
	}
	for _, name := range allBuckets {
		if tx.Bucket(name) == nil && !(v == 2 && bytes.Equal(name, bucketNDRP)) {
			return fmt.Errorf("bucket %s missing", name)
		}
	}
	if _, err := f.metaUint(tx, metaNDisc); err != nil {
		return err
	}
	return nil
}

// upgradeTx turns a format-2 store into the current format: it indexes
// the stored non-discoverable credentials (bucketNDRP), in the one
// transaction that also records the new format, so a crash leaves either
// format whole. It reads every credential once, at the first open.
func (f *File) upgradeTx(tx *bolt.Tx) error {
	idx, err := tx.CreateBucketIfNotExists(bucketNDRP)
	if err != nil {
		return err
	}
	err = tx.Bucket(bucketCreds).ForEach(func(k, _ []byte) error {
		c, err := f.credentialTx(tx, k)
		if err != nil || c.Discoverable {
			return err
		}
		return idx.Put(f.ndrpKey(c, k), nil)
	})
	if err != nil {
		return err
	}
	return f.put(tx, bucketMeta, metaFormat, binary.BigEndian.AppendUint16(nil, storeFormat))
}

// initTx creates the buckets and the records of an empty store.
func (f *File) initTx(tx *bolt.Tx) error {
	for _, name := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	if err := f.put(tx, bucketMeta, metaFormat, binary.BigEndian.AppendUint16(nil, storeFormat)); err != nil {
		return err
	}
	if err := f.putMetaUint(tx, metaNDisc, 0); err != nil {
		return err
	}
	return f.putCBOR(tx, bucketMeta, metaPIN, PINState{Retries: DefaultPINRetries})
}

// migrate converts the legacy state file into a new store: it is built
// beside as migratingFileName in one transaction, and renamed into place
// (the commit). The legacy file is removed only after that.
func (f *File) migrate(legacy string) error {
	data, err := os.ReadFile(legacy)
	if err != nil {
		return fmt.Errorf("open state: read %s: %w", legacy, err)
	}
	doc, err := decryptLegacy(f.aead, data)
	if err != nil {
		return &CorruptError{Path: legacy, Err: err}
	}
	tmp := filepath.Join(f.dir, migratingFileName)
	_ = os.Remove(tmp)
	db, err := bolt.Open(tmp, 0o600, boltOptions())
	if err != nil {
		return fmt.Errorf("convert state: %w", err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if err := f.initTx(tx); err != nil {
			return err
		}
		if doc.Identity != nil {
			if err := f.putCBOR(tx, bucketMeta, metaIdentity, doc.Identity); err != nil {
				return err
			}
		}
		if err := f.putCBOR(tx, bucketMeta, metaPIN, doc.PIN); err != nil {
			return err
		}
		if err := f.putCBOR(tx, bucketMeta, metaConfig, doc.Config); err != nil {
			return err
		}
		if doc.LargeBlob != nil {
			if err := f.put(tx, bucketMeta, metaLargeBlob, doc.LargeBlob); err != nil {
				return err
			}
		}
		byHash := map[[32]byte][]byte{}
		for _, c := range doc.Credentials {
			byHash[sha256.Sum256(c.ID)] = c.ID
			if _, err := f.putCredentialTx(tx, c, false); err != nil {
				return err
			}
		}
		// A stored credential keeps its own counter; the counters of
		// credentials that are not stored become one global counter above
		// all of them, so no value is handed out twice for any ID.
		var global uint32
		for _, r := range doc.Counters {
			if id, ok := byHash[[32]byte(r.Key)]; ok {
				ck := f.credKey(id)
				if err := f.put(tx, bucketCounters, ck[:], counterRecord{ceiling: r.Reserved}.encode()); err != nil {
					return err
				}
			} else {
				global = max(global, r.Reserved)
			}
		}
		return f.putMetaUint(tx, metaGlobal, uint64(global))
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, f.path)
	}
	if err == nil {
		err = syncDir(f.dir)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("convert state %s: %w", legacy, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
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
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("sync folder: %w", err)
	}
	return nil
}

// --- keys and records ---

func deriveMACKey(master []byte) []byte {
	m := hmac.New(sha256.New, master)
	m.Write([]byte("vkey store index key"))
	return m.Sum(nil)
}

func (f *File) mac(parts ...[]byte) [32]byte {
	m, _ := f.macs.Get().(hash.Hash)
	if m == nil {
		m = hmac.New(sha256.New, f.macKey)
	}
	m.Reset()
	var n [4]byte
	for _, p := range parts {
		binary.BigEndian.PutUint32(n[:], uint32(len(p)))
		m.Write(n[:])
		m.Write(p)
	}
	var out [32]byte
	m.Sum(out[:0])
	f.macs.Put(m)
	return out
}

func (f *File) credKey(id []byte) [credKeySize]byte { return f.mac([]byte("id"), id) }

func (f *File) rpTag(rpIDHash []byte) []byte {
	t := f.mac([]byte("rp"), rpIDHash)
	return t[:tagSize]
}

func (f *File) userTag(rpIDHash, userID []byte) []byte {
	t := f.mac([]byte("user"), rpIDHash, userID)
	return t[:tagSize]
}

func recordAD(bucket, key []byte) []byte {
	ad := make([]byte, 0, len(bucket)+1+len(key))
	return append(append(append(ad, bucket...), 0), key...)
}

// put encrypts plain as the record bucket/key.
func (f *File) put(tx *bolt.Tx, bucket, key, plain []byte) error {
	out := make([]byte, gcmNonceSize, gcmNonceSize+len(plain)+f.aead.Overhead())
	if _, err := rand.Read(out); err != nil {
		return fmt.Errorf("keystore: nonce: %w", err)
	}
	out = f.aead.Seal(out, out[:gcmNonceSize], plain, recordAD(bucket, key))
	return tx.Bucket(bucket).Put(key, out)
}

// errAbsent is get's answer for a missing record.
var errAbsent = errors.New("record absent")

// get decrypts the record bucket/key; errAbsent if there is none.
func (f *File) get(tx *bolt.Tx, bucket, key []byte) ([]byte, error) {
	v := tx.Bucket(bucket).Get(key)
	if v == nil {
		return nil, errAbsent
	}
	if len(v) < gcmNonceSize+f.aead.Overhead() {
		return nil, fmt.Errorf("record %s/%x: too short", bucket, key)
	}
	plain, err := f.aead.Open(nil, v[:gcmNonceSize], v[gcmNonceSize:], recordAD(bucket, key))
	if err != nil {
		return nil, fmt.Errorf("record %s/%x: %w", bucket, key, err)
	}
	return plain, nil
}

func (f *File) putCBOR(tx *bolt.Tx, bucket, key []byte, v any) error {
	b, err := storeEnc.Marshal(v)
	if err != nil {
		return fmt.Errorf("keystore: encode: %w", err)
	}
	defer clear(b)
	return f.put(tx, bucket, key, b)
}

func (f *File) getCBOR(tx *bolt.Tx, bucket, key []byte, v any) error {
	b, err := f.get(tx, bucket, key)
	if err != nil {
		return err
	}
	defer clear(b)
	if err := storeDec.Unmarshal(b, v); err != nil {
		return fmt.Errorf("record %s/%x: %w", bucket, key, err)
	}
	return nil
}

func (f *File) metaUint(tx *bolt.Tx, key []byte) (uint64, error) {
	b, err := f.get(tx, bucketMeta, key)
	if errors.Is(err, errAbsent) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(b) != 8 {
		return 0, fmt.Errorf("record meta/%s: bad length", key)
	}
	return binary.BigEndian.Uint64(b), nil
}

func (f *File) putMetaUint(tx *bolt.Tx, key []byte, v uint64) error {
	return f.put(tx, bucketMeta, key, binary.BigEndian.AppendUint64(nil, v))
}

// view runs a read transaction; update runs a write transaction (one
// commit). Both turn a bbolt panic on a damaged page into an error.
func (f *File) view(fn func(tx *bolt.Tx) error) (err error) {
	if f.closed.Load() {
		return ErrClosed
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer recoverDamage(&err)
	err = f.db.View(fn)
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

func (f *File) update(fn func(tx *bolt.Tx) error) (err error) {
	if f.closed.Load() {
		return ErrClosed
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer recoverDamage(&err)
	// Whatever the outcome, a write may have changed credentials.
	defer f.cache.invalidate()
	err = f.db.Update(fn)
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

func recoverDamage(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("keystore: state damaged: %v", r)
	}
}

// Dir returns the state folder.
func (f *File) Dir() string { return f.dir }
