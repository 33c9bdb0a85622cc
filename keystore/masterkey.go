package keystore

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/zalando/go-keyring"
	"golang.org/x/crypto/argon2"
)

// Kinds of master key source, as recorded in MasterKeySourceFileName.
const (
	SourceKeyring    = "keyring"
	SourcePassphrase = "passphrase"
	SourceSealed     = "sealed"
	SourceKeyFile    = "keyfile"
)

// Files a master key source may keep beside the state (all 0600).
const (
	// MasterKeySourceFileName records which kind of source protects the
	// state, so a later run uses the same one instead of inventing a key.
	MasterKeySourceFileName = "masterkey.source"
	// PassphraseParamsFileName holds the argon2id salt and parameters.
	PassphraseParamsFileName = "passphrase.params"
	// SealedKeyFileName holds the master key sealed by a Sealer (the TPM).
	SealedKeyFileName = "masterkey.sealed"
	// KeyFileName holds the raw master key (last resort).
	KeyFileName = "masterkey.key"
)

// KeyringService is the go-keyring service name under which master keys are
// kept; the user name is the absolute state folder.
const KeyringService = "vkey"

// DefaultKeyringTimeout bounds every OS keyring call: an unlock prompt can
// block forever.
const DefaultKeyringTimeout = 3 * time.Second

// ErrWrongPassphrase is returned when a passphrase does not match the one
// that protects a state folder or a backup file.
var ErrWrongPassphrase = errors.New("wrong passphrase (or the protected file is damaged)")

// ErrNoMasterKey is returned by a source told not to create a key
// (NoCreate) when it has none.
var ErrNoMasterKey = errors.New("no master key stored")

// MasterKeySource produces the 32-byte master key of a state folder.
type MasterKeySource interface {
	// Kind is the stable identifier recorded beside the state (Source*).
	Kind() string
	// Name says, for the user, where the key lives and what protects it.
	Name() string
	// Key returns the master key, creating and storing a random one on
	// first use unless the source was told not to.
	Key(ctx context.Context) ([]byte, error)
}

// callWithContext runs fn in a goroutine and gives up when ctx ends (fn may
// keep running; its result is dropped). Used for calls that can block
// without honouring a context: keyring prompts, TPM commands.
func callWithContext[T any](ctx context.Context, fn func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := fn()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

func randomKey() ([]byte, error) {
	k := make([]byte, MasterKeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("random master key: %w", err)
	}
	return k, nil
}

// keyringAPI is the part of go-keyring KeyringSource uses (a seam for tests).
type keyringAPI interface {
	Get(service, user string) (string, error)
	Set(service, user, secret string) error
}

type goKeyring struct{}

func (goKeyring) Get(service, user string) (string, error) { return keyring.Get(service, user) }
func (goKeyring) Set(service, user, secret string) error   { return keyring.Set(service, user, secret) }

// KeyringSource keeps the master key in the OS keyring (Secret Service on
// Linux) under service "vkey" and the absolute state folder as user.
type KeyringSource struct {
	// Dir is the state folder.
	Dir string
	// Timeout bounds each keyring call (DefaultKeyringTimeout if 0).
	Timeout time.Duration
	// NoCreate makes Key fail with ErrNoMasterKey instead of creating a key.
	NoCreate bool

	api keyringAPI
}

// Kind implements MasterKeySource.
func (s *KeyringSource) Kind() string { return SourceKeyring }

// Name implements MasterKeySource.
func (s *KeyringSource) Name() string { return "OS keyring (protected by your login session)" }

func (s *KeyringSource) call(ctx context.Context, fn func(keyringAPI) (string, error)) (string, error) {
	api := s.api
	if api == nil {
		api = goKeyring{}
	}
	t := s.Timeout
	if t <= 0 {
		t = DefaultKeyringTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, t)
	defer cancel()
	v, err := callWithContext(ctx, func() (string, error) { return fn(api) })
	if errors.Is(err, context.DeadlineExceeded) {
		return "", fmt.Errorf("OS keyring did not answer within %v (locked or no keyring service): %w", t, err)
	}
	return v, err
}

// Key implements MasterKeySource.
func (s *KeyringSource) Key(ctx context.Context) ([]byte, error) {
	user, err := filepath.Abs(s.Dir)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	v, err := s.call(ctx, func(api keyringAPI) (string, error) { return api.Get(KeyringService, user) })
	if err == nil {
		k, derr := base64.StdEncoding.DecodeString(v)
		if derr != nil || len(k) != MasterKeySize {
			return nil, fmt.Errorf("keyring: the entry for %s is not a vkey master key", user)
		}
		return k, nil
	}
	if !errors.Is(err, keyring.ErrNotFound) {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	if s.NoCreate {
		return nil, fmt.Errorf("keyring: entry for %s: %w", user, ErrNoMasterKey)
	}
	k, err := randomKey()
	if err != nil {
		return nil, err
	}
	enc := base64.StdEncoding.EncodeToString(k)
	if _, err := s.call(ctx, func(api keyringAPI) (string, error) { return "", api.Set(KeyringService, user, enc) }); err != nil {
		return nil, fmt.Errorf("keyring: store master key: %w", err)
	}
	return k, nil
}

// Argon2Params are argon2id parameters (RFC 9106).
type Argon2Params struct {
	Time    uint32 `cbor:"1,keyasint"`
	Memory  uint32 `cbor:"2,keyasint"` // KiB
	Threads uint8  `cbor:"3,keyasint"`
}

// DefaultArgon2Params is RFC 9106's second recommended option (section 4):
// t=3, m=64 MiB, p=4.
var DefaultArgon2Params = Argon2Params{Time: 3, Memory: 64 * 1024, Threads: 4}

// validate bounds parameters read from a file, so a hostile file cannot make
// vkey allocate without limit.
func (p Argon2Params) validate() error {
	if p.Time < 1 || p.Time > 64 || p.Memory < 8 || p.Memory > 4*1024*1024 || p.Threads < 1 {
		return fmt.Errorf("argon2id parameters out of range (t=%d m=%dKiB p=%d)", p.Time, p.Memory, p.Threads)
	}
	if p.Memory < 8*uint32(p.Threads) {
		return fmt.Errorf("argon2id memory %d KiB is below 8 KiB per thread", p.Memory)
	}
	return nil
}

func (p Argon2Params) derive(passphrase, salt []byte) []byte {
	return argon2.IDKey(passphrase, salt, p.Time, p.Memory, p.Threads, MasterKeySize)
}

// passphraseParams is the content of PassphraseParamsFileName.
type passphraseParams struct {
	Version int          `cbor:"1,keyasint"`
	Params  Argon2Params `cbor:"2,keyasint"`
	Salt    []byte       `cbor:"3,keyasint"`
	// Check is HMAC-SHA-256(key, "vkey master key check") truncated to 16
	// bytes: it tells a wrong passphrase from a damaged state file and
	// reveals nothing the encrypted state does not.
	Check []byte `cbor:"4,keyasint"`
}

func keyCheck(key []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("vkey master key check"))
	return m.Sum(nil)[:16]
}

// PassphraseSource derives the master key from a passphrase with argon2id;
// the salt and parameters live in a 0600 file beside the state.
type PassphraseSource struct {
	// Dir is the state folder.
	Dir string
	// Passphrase returns the passphrase (read from a file or a prompt).
	Passphrase func(ctx context.Context) ([]byte, error)
	// Params are used when the folder has no parameters yet
	// (DefaultArgon2Params if zero).
	Params Argon2Params
	// NoCreate makes Key fail with ErrNoMasterKey when no parameters exist.
	NoCreate bool
}

// Kind implements MasterKeySource.
func (s *PassphraseSource) Kind() string { return SourcePassphrase }

// Name implements MasterKeySource.
func (s *PassphraseSource) Name() string { return "passphrase (argon2id)" }

// Key implements MasterKeySource. A passphrase that does not match the
// recorded one yields ErrWrongPassphrase.
func (s *PassphraseSource) Key(ctx context.Context) ([]byte, error) {
	if s.Passphrase == nil {
		return nil, errors.New("passphrase: none given")
	}
	path := filepath.Join(s.Dir, PassphraseParamsFileName)
	data, err := os.ReadFile(path)
	exists := err == nil
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("passphrase: %w", err)
	}
	if !exists && s.NoCreate {
		return nil, fmt.Errorf("passphrase: %s: %w", path, ErrNoMasterKey)
	}
	pass, err := s.Passphrase(ctx)
	if err != nil {
		return nil, fmt.Errorf("passphrase: %w", err)
	}
	defer clear(pass)
	if len(pass) == 0 {
		return nil, errors.New("passphrase: empty")
	}
	if exists {
		var pp passphraseParams
		dm, err := decMode()
		if err != nil {
			return nil, err
		}
		if err := dm.Unmarshal(data, &pp); err != nil || pp.Version != 1 || len(pp.Salt) < 16 || len(pp.Check) != 16 {
			return nil, fmt.Errorf("passphrase: %s is damaged", path)
		}
		if err := pp.Params.validate(); err != nil {
			return nil, fmt.Errorf("passphrase: %s: %w", path, err)
		}
		k := pp.Params.derive(pass, pp.Salt)
		if subtle.ConstantTimeCompare(keyCheck(k), pp.Check) != 1 {
			clear(k)
			return nil, ErrWrongPassphrase
		}
		return k, nil
	}
	p := s.Params
	if p == (Argon2Params{}) {
		p = DefaultArgon2Params
	}
	if err := p.validate(); err != nil {
		return nil, fmt.Errorf("passphrase: %w", err)
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("passphrase: salt: %w", err)
	}
	k := p.derive(pass, salt)
	em, err := encMode()
	if err != nil {
		return nil, err
	}
	out, err := em.Marshal(passphraseParams{Version: 1, Params: p, Salt: salt, Check: keyCheck(k)})
	if err != nil {
		return nil, fmt.Errorf("passphrase: %w", err)
	}
	if err := ensureDir(s.Dir); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(s.Dir, PassphraseParamsFileName, out); err != nil {
		return nil, fmt.Errorf("passphrase: write %s: %w", path, err)
	}
	return k, nil
}

// SealedSource keeps a random master key sealed by a Sealer (the TPM) in a
// 0600 file beside the state.
type SealedSource struct {
	// Dir is the state folder.
	Dir string
	// Sealer seals and unseals the key.
	Sealer Sealer
	// Label names the sealer for the user ("TPM" if empty).
	Label string
	// NoCreate makes Key fail with ErrNoMasterKey when no sealed key exists.
	NoCreate bool
}

// Kind implements MasterKeySource.
func (s *SealedSource) Kind() string { return SourceSealed }

// Name implements MasterKeySource.
func (s *SealedSource) Name() string {
	l := s.Label
	if l == "" {
		l = "TPM"
	}
	return "key sealed by the " + l + " (usable only on this machine)"
}

// Key implements MasterKeySource.
func (s *SealedSource) Key(ctx context.Context) ([]byte, error) {
	if s.Sealer == nil {
		return nil, errors.New("sealed key: no sealer")
	}
	path := filepath.Join(s.Dir, SealedKeyFileName)
	blob, err := os.ReadFile(path)
	if err == nil {
		k, err := callWithContext(ctx, func() ([]byte, error) { return s.Sealer.Unseal(blob) })
		if err != nil {
			return nil, fmt.Errorf("sealed key: unseal %s: %w", path, err)
		}
		if len(k) != MasterKeySize {
			return nil, fmt.Errorf("sealed key: %s does not hold a master key", path)
		}
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("sealed key: %w", err)
	}
	if s.NoCreate {
		return nil, fmt.Errorf("sealed key: %s: %w", path, ErrNoMasterKey)
	}
	k, err := randomKey()
	if err != nil {
		return nil, err
	}
	blob, err = callWithContext(ctx, func() ([]byte, error) { return s.Sealer.Seal(k) })
	if err != nil {
		return nil, fmt.Errorf("sealed key: seal: %w", err)
	}
	if err := ensureDir(s.Dir); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(s.Dir, SealedKeyFileName, blob); err != nil {
		return nil, fmt.Errorf("sealed key: write %s: %w", path, err)
	}
	return k, nil
}

// KeyFileSource keeps the raw master key in a 0600 file beside the state:
// the last resort, protected only by file permissions.
type KeyFileSource struct {
	// Dir is the state folder.
	Dir string
	// NoCreate makes Key fail with ErrNoMasterKey when the file is absent.
	NoCreate bool
}

// Kind implements MasterKeySource.
func (s *KeyFileSource) Kind() string { return SourceKeyFile }

// Name implements MasterKeySource.
func (s *KeyFileSource) Name() string { return "key file (protected only by file permissions)" }

// Key implements MasterKeySource. It refuses a key file that group or
// others may access.
func (s *KeyFileSource) Key(ctx context.Context) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	path := filepath.Join(s.Dir, KeyFileName)
	f, err := os.Open(path)
	if err == nil {
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return nil, fmt.Errorf("key file: %w", err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("key file: %s is accessible to other users (mode %#o); run chmod 600 on it", path, st.Mode().Perm())
		}
		k := make([]byte, MasterKeySize+1)
		n, _ := f.Read(k)
		if n != MasterKeySize {
			return nil, fmt.Errorf("key file: %s does not hold a %d-byte key", path, MasterKeySize)
		}
		return k[:MasterKeySize], nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("key file: %w", err)
	}
	if s.NoCreate {
		return nil, fmt.Errorf("key file: %s: %w", path, ErrNoMasterKey)
	}
	k, err := randomKey()
	if err != nil {
		return nil, err
	}
	if err := ensureDir(s.Dir); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(s.Dir, KeyFileName, k); err != nil {
		return nil, fmt.Errorf("key file: write %s: %w", path, err)
	}
	return k, nil
}

func ensureDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create state folder: %w", err)
	}
	return nil
}

// MasterKeyPrefs says which master key sources ChooseMasterKey may use.
type MasterKeyPrefs struct {
	// Passphrase, when set, is the user's explicit choice of a passphrase
	// (--passphrase-file or a prompt) and wins over everything else.
	Passphrase func(ctx context.Context) ([]byte, error)
	// Argon2 overrides DefaultArgon2Params for a new passphrase.
	Argon2 Argon2Params
	// Sealer is the TPM (nil when there is none).
	Sealer Sealer
	// SealerLabel names the sealer ("TPM" if empty).
	SealerLabel string
	// Keyring allows the OS keyring.
	Keyring bool
	// KeyringTimeout bounds each keyring call (DefaultKeyringTimeout if 0).
	KeyringTimeout time.Duration
	// NoKeyFile forbids the last-resort key file.
	NoKeyFile bool

	keyringAPI keyringAPI // tests
}

// MasterKey is what ChooseMasterKey picked.
type MasterKey struct {
	// Key is the 32-byte master key for FileOptions.MasterKey.
	Key []byte
	// Source is where it came from; Source.Name() is what to tell the user.
	Source MasterKeySource
	// Created reports that the key was made now (a new state folder).
	Created bool
	// Skipped lists the stronger sources that were not usable, and why.
	Skipped []string
}

func (p MasterKeyPrefs) source(kind, dir string, noCreate bool) (MasterKeySource, error) {
	switch kind {
	case SourcePassphrase:
		if p.Passphrase == nil {
			return nil, errors.New("no passphrase was given (give it with --passphrase-file FILE)")
		}
		return &PassphraseSource{Dir: dir, Passphrase: p.Passphrase, Params: p.Argon2, NoCreate: noCreate}, nil
	case SourceSealed:
		if p.Sealer == nil {
			return nil, errors.New("no TPM is available")
		}
		return &SealedSource{Dir: dir, Sealer: p.Sealer, Label: p.SealerLabel, NoCreate: noCreate}, nil
	case SourceKeyring:
		if !p.Keyring {
			return nil, errors.New("the OS keyring is not enabled")
		}
		return &KeyringSource{Dir: dir, Timeout: p.KeyringTimeout, NoCreate: noCreate, api: p.keyringAPI}, nil
	case SourceKeyFile:
		if p.NoKeyFile {
			return nil, errors.New("the key file is not allowed")
		}
		return &KeyFileSource{Dir: dir, NoCreate: noCreate}, nil
	}
	return nil, fmt.Errorf("unknown master key source %q", kind)
}

// ChooseMasterKey returns the master key of the state folder dir. A folder
// that already has a key keeps the source it was created with (recorded in
// MasterKeySourceFileName); a new folder gets the strongest source
// available, in this order: a passphrase the user gave, the TPM, the OS
// keyring, a key file.
func ChooseMasterKey(ctx context.Context, dir string, prefs MasterKeyPrefs) (*MasterKey, error) {
	recPath := filepath.Join(dir, MasterKeySourceFileName)
	rec, err := os.ReadFile(recPath)
	if err == nil {
		kind := strings.TrimSpace(string(rec))
		src, err := prefs.source(kind, dir, true)
		if err != nil {
			return nil, fmt.Errorf("the state in %s is protected by its %s master key, but %w", dir, kind, err)
		}
		k, err := src.Key(ctx)
		if err != nil {
			return nil, fmt.Errorf("master key from %s: %w", src.Name(), err)
		}
		return &MasterKey{Key: k, Source: src}, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("master key: %w", err)
	}
	if HasState(dir) {
		return nil, fmt.Errorf("the state in %s has no %s record: cannot tell which master key protects it", dir, MasterKeySourceFileName)
	}
	mk := &MasterKey{Created: true}
	for _, kind := range []string{SourcePassphrase, SourceSealed, SourceKeyring, SourceKeyFile} {
		src, err := prefs.source(kind, dir, false)
		if err != nil {
			mk.Skipped = append(mk.Skipped, kind+": "+err.Error())
			continue
		}
		k, err := src.Key(ctx)
		if err != nil {
			if kind == SourcePassphrase {
				// The user asked for a passphrase: do not fall back silently.
				return nil, fmt.Errorf("master key from %s: %w", src.Name(), err)
			}
			mk.Skipped = append(mk.Skipped, src.Name()+": "+err.Error())
			continue
		}
		if err := ensureDir(dir); err != nil {
			return nil, err
		}
		if err := writeFileAtomic(dir, MasterKeySourceFileName, []byte(kind+"\n")); err != nil {
			return nil, fmt.Errorf("master key: record source: %w", err)
		}
		mk.Key, mk.Source = k, src
		return mk, nil
	}
	return nil, fmt.Errorf("no master key source is usable: %s", strings.Join(mk.Skipped, "; "))
}

// OpenState opens the state in dir as `vkey run` does: it prepares the
// folder (see PrepareStateDir), takes its lock, and only then reads or
// chooses the master key (ChooseMasterKey) and opens the store, so that a
// second start on the same folder is refused (*LockedError) before it can
// choose or write any key material. opts.MasterKey is ignored.
func OpenState(ctx context.Context, dir string, prefs MasterKeyPrefs, opts FileOptions) (*File, *MasterKey, error) {
	if err := PrepareStateDir(dir); err != nil {
		return nil, nil, err
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, nil, err
	}
	mk, err := ChooseMasterKey(ctx, dir, prefs)
	if err != nil {
		unlockDir(lock)
		return nil, nil, err
	}
	opts.MasterKey = mk.Key
	f, err := openLocked(dir, lock, opts)
	if err != nil {
		unlockDir(lock)
		return nil, nil, err
	}
	return f, mk, nil
}
