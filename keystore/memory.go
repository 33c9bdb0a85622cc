package keystore

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"math"
	"sort"
	"sync"
)

// DefaultMaxDiscoverable is how many discoverable credentials a store holds
// unless configured otherwise.
const DefaultMaxDiscoverable = 256

// Memory is a Store that lives only in memory (`vkey run --ephemeral`, tests).
type Memory struct {
	mu              sync.Mutex
	maxDiscoverable int
	identity        *Identity
	creds           map[string]*Credential
	counters        map[[32]byte]uint32
	pin             PINState
	config          Config
	largeBlob       []byte
}

// NewMemory returns an empty in-memory store holding at most
// maxDiscoverable discoverable credentials (DefaultMaxDiscoverable if <= 0).
func NewMemory(maxDiscoverable int) *Memory {
	if maxDiscoverable <= 0 {
		maxDiscoverable = DefaultMaxDiscoverable
	}
	m := &Memory{maxDiscoverable: maxDiscoverable}
	m.wipe()
	return m
}

func (m *Memory) wipe() {
	m.creds = map[string]*Credential{}
	m.counters = map[[32]byte]uint32{}
	m.pin = PINState{Retries: DefaultPINRetries}
	m.config = Config{}
	m.largeBlob = nil
}

// Identity implements Store.
func (m *Memory) Identity() (*Identity, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.identity == nil {
		return nil, ErrNotFound
	}
	id := *m.identity
	return &id, nil
}

// SetIdentity implements Store.
func (m *Memory) SetIdentity(id *Identity) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := *id
	m.identity = &c
	return nil
}

// PutCredential implements Store.
func (m *Memory) PutCredential(c *Credential) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, exists := m.creds[string(c.ID)]; !exists && c.Discoverable && m.discoverableLocked() >= m.maxDiscoverable {
		return ErrFull
	}
	m.creds[string(c.ID)] = c.Clone()
	return nil
}

func (m *Memory) discoverableLocked() int {
	n := 0
	for _, c := range m.creds {
		if c.Discoverable {
			n++
		}
	}
	return n
}

// Credential implements Store.
func (m *Memory) Credential(id []byte) (*Credential, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.creds[string(id)]
	if !ok {
		return nil, ErrNotFound
	}
	return c.Clone(), nil
}

// Credentials implements Store.
func (m *Memory) Credentials() ([]*Credential, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*Credential, 0, len(m.creds))
	for _, c := range m.creds {
		out = append(out, c.Clone())
	}
	SortOldestFirst(out)
	return out, nil
}

// SortOldestFirst orders credentials by creation time, then by ID, so that
// every store lists them the same way.
func SortOldestFirst(cs []*Credential) {
	sort.SliceStable(cs, func(i, j int) bool {
		if !cs[i].Created.Equal(cs[j].Created) {
			return cs[i].Created.Before(cs[j].Created)
		}
		return bytes.Compare(cs[i].ID, cs[j].ID) < 0
	})
}

// DeleteCredential implements Store.
func (m *Memory) DeleteCredential(id []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.creds[string(id)]; !ok {
		return ErrNotFound
	}
	delete(m.creds, string(id))
	delete(m.counters, CounterKey(id))
	return nil
}

// RemainingDiscoverable implements Store.
func (m *Memory) RemainingDiscoverable() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.maxDiscoverable - m.discoverableLocked()
}

// CounterKey is the key under which a credential's signature counter is
// kept: the SHA-256 of its ID, so non-discoverable IDs are not stored whole.
func CounterKey(id []byte) [32]byte { return sha256.Sum256(id) }

// NextSignCount implements Store.
func (m *Memory) NextSignCount(id []byte) (uint32, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := CounterKey(id)
	if m.counters[k] == math.MaxUint32 {
		return 0, ErrCounterExhausted // wrapping to 0 would repeat values
	}
	m.counters[k]++
	return m.counters[k], nil
}

// SignCount implements Store.
func (m *Memory) SignCount(id []byte) (uint32, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.counters[CounterKey(id)], nil
}

// SetSignCount implements Store.
func (m *Memory) SetSignCount(id []byte, n uint32) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.counters[CounterKey(id)] = n
	return nil
}

// PINState implements Store.
func (m *Memory) PINState() (PINState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.pin
	s.Hash = append([]byte(nil), s.Hash...)
	if m.pin.Hash == nil {
		s.Hash = nil
	}
	return s, nil
}

// SetPINState implements Store.
func (m *Memory) SetPINState(s PINState) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pin = s
	if s.Hash != nil {
		m.pin.Hash = append([]byte(nil), s.Hash...)
	}
	return nil
}

// Config implements Store.
func (m *Memory) Config() (Config, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.config
	c.MinPINLengthRPIDs = append([]string(nil), c.MinPINLengthRPIDs...)
	return c, nil
}

// SetConfig implements Store.
func (m *Memory) SetConfig(c Config) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.config = c
	m.config.MinPINLengthRPIDs = append([]string(nil), c.MinPINLengthRPIDs...)
	return nil
}

// LargeBlobArray implements Store.
func (m *Memory) LargeBlobArray() ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.largeBlob == nil {
		return nil, nil
	}
	return append([]byte(nil), m.largeBlob...), nil
}

// SetLargeBlobArray implements Store.
func (m *Memory) SetLargeBlobArray(b []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.largeBlob = append([]byte(nil), b...)
	return nil
}

// Reset implements Store.
func (m *Memory) Reset() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.wipe()
	if m.identity != nil {
		k := make([]byte, 32)
		if _, err := rand.Read(k); err != nil {
			return err
		}
		m.identity.WrapKey = k
	}
	return nil
}

// Close implements Store.
func (m *Memory) Close() error { return nil }

var _ Store = (*Memory)(nil)
