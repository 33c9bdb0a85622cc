package keystore

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"
)

// DefaultMaxDiscoverable is how many discoverable credentials a store holds
// unless configured otherwise.
const DefaultMaxDiscoverable = 256

// userKey identifies a discoverable credential's relying party and user.
type userKey struct {
	rp   [32]byte
	user string
}

// memCounter is a counter in memory; deleted marks a tombstone.
type memCounter struct {
	value   uint32
	deleted bool
}

// Memory is a Store that lives only in memory (`vkey run --ephemeral`, tests).
type Memory struct {
	mu              sync.RWMutex
	maxDiscoverable int
	identity        *Identity
	creds           map[string]*Credential
	// order holds the keys of creds, sorted: the order of CredentialsPage.
	order  []string
	byRP   map[[32]byte]map[string]bool
	byUser map[userKey]map[string]bool
	// byRPND indexes the non-discoverable credentials by RP ID hash.
	byRPND    map[[32]byte]map[string]bool
	ndisc     int
	counters  map[[32]byte]*memCounter
	global    uint32
	pin       PINState
	config    Config
	largeBlob []byte
}

// NewMemory returns an empty in-memory store holding at most
// maxDiscoverable discoverable credentials: DefaultMaxDiscoverable if 0,
// no limit if negative (Unlimited).
func NewMemory(maxDiscoverable int) *Memory {
	if maxDiscoverable == 0 {
		maxDiscoverable = DefaultMaxDiscoverable
	}
	m := &Memory{maxDiscoverable: maxDiscoverable}
	m.wipe()
	return m
}

func (m *Memory) wipe() {
	m.creds = map[string]*Credential{}
	m.order = nil
	m.byRP = map[[32]byte]map[string]bool{}
	m.byUser = map[userKey]map[string]bool{}
	m.byRPND = map[[32]byte]map[string]bool{}
	m.ndisc = 0
	m.counters = map[[32]byte]*memCounter{}
	m.global = 0
	m.pin = PINState{Retries: DefaultPINRetries}
	m.config = Config{}
	m.largeBlob = nil
}

// Identity implements Store.
func (m *Memory) Identity() (*Identity, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.identity == nil {
		return nil, ErrNotFound
	}
	return m.identity.Clone(), nil
}

// SetIdentity implements Store.
func (m *Memory) SetIdentity(id *Identity) error {
	if id == nil {
		return errors.New("keystore: nil identity")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.identity = id.Clone()
	return nil
}

func userKeyOf(c *Credential) userKey {
	return userKey{rp: sha256.Sum256([]byte(c.RPID)), user: string(c.UserID)}
}

func addIndex[K comparable](idx map[K]map[string]bool, k K, id string) {
	if idx[k] == nil {
		idx[k] = map[string]bool{}
	}
	idx[k][id] = true
}

func dropIndex[K comparable](idx map[K]map[string]bool, k K, id string) {
	delete(idx[k], id)
	if len(idx[k]) == 0 {
		delete(idx, k)
	}
}

// removeLocked deletes a stored credential as File.removeTx does.
func (m *Memory) removeLocked(old *Credential) {
	id := string(old.ID)
	m.deleteLocked(id)
	k := CounterKey(old.ID)
	if !old.Discoverable {
		dropIndex(m.byRPND, sha256.Sum256([]byte(old.RPID)), id)
		c := m.counters[k]
		if c == nil {
			c = &memCounter{}
			m.counters[k] = c
		}
		c.deleted = true
		return
	}
	uk := userKeyOf(old)
	dropIndex(m.byRP, uk.rp, id)
	dropIndex(m.byUser, uk, id)
	delete(m.counters, k)
	m.ndisc--
}

func (m *Memory) putLocked(c *Credential) error {
	old, exists := m.creds[string(c.ID)]
	wasDiscoverable := exists && old.Discoverable
	if c.Discoverable && !wasDiscoverable && m.maxDiscoverable >= 0 && m.ndisc >= m.maxDiscoverable {
		return ErrFull
	}
	m.putUnlimitedLocked(c)
	return nil
}

// putUnlimitedLocked stores c without looking at the limit.
func (m *Memory) putUnlimitedLocked(c *Credential) {
	id := string(c.ID)
	old, exists := m.creds[id]
	if exists {
		if old.Discoverable {
			m.removeLocked(old)
		} else {
			m.deleteLocked(id)
			dropIndex(m.byRPND, sha256.Sum256([]byte(old.RPID)), id)
		}
	}
	if c.Discoverable {
		uk := userKeyOf(c)
		addIndex(m.byRP, uk.rp, id)
		addIndex(m.byUser, uk, id)
		m.ndisc++
	} else {
		addIndex(m.byRPND, sha256.Sum256([]byte(c.RPID)), id)
	}
	if ctr := m.counters[CounterKey(c.ID)]; ctr != nil {
		ctr.deleted = false
	}
	if _, ok := m.creds[id]; !ok {
		i, _ := slices.BinarySearch(m.order, id)
		m.order = slices.Insert(m.order, i, id)
	}
	m.creds[id] = c.Clone()
}

// deleteLocked removes the credential stored under id from creds and order.
func (m *Memory) deleteLocked(id string) {
	delete(m.creds, id)
	if i, ok := slices.BinarySearch(m.order, id); ok {
		m.order = slices.Delete(m.order, i, i+1)
	}
}

// PutCredential implements Store.
func (m *Memory) PutCredential(c *Credential) error {
	if err := checkCredential(c); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.putLocked(c)
}

// PutDiscoverable implements Store.
func (m *Memory) PutDiscoverable(c *Credential) ([][]byte, error) {
	if err := checkCredential(c); err != nil {
		return nil, err
	}
	if !c.Discoverable {
		return nil, errors.New("keystore: PutDiscoverable of a non-discoverable credential")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var victims []*Credential
	for id := range m.byUser[userKeyOf(c)] {
		if old := m.creds[id]; id != string(c.ID) && old.RPID == c.RPID {
			victims = append(victims, old)
		}
	}
	if len(victims) == 0 {
		return nil, m.putLocked(c)
	}
	// A replacement does not grow the store: it fits even in a store
	// holding more than its limit.
	var replaced [][]byte
	for _, old := range victims {
		m.removeLocked(old)
		replaced = append(replaced, append([]byte(nil), old.ID...))
	}
	m.putUnlimitedLocked(c)
	return replaced, nil
}

// Credential implements Store.
func (m *Memory) Credential(id []byte) (*Credential, error) {
	if id == nil {
		return nil, errors.New("keystore: nil credential ID")
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	c, ok := m.creds[string(id)]
	if !ok {
		if ctr := m.counters[CounterKey(id)]; ctr != nil && ctr.deleted {
			return nil, ErrDeleted
		}
		return nil, ErrNotFound
	}
	return c.Clone(), nil
}

// Credentials implements Store.
func (m *Memory) Credentials() ([]*Credential, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]*Credential, 0, len(m.creds))
	for _, c := range m.creds {
		out = append(out, c.Clone())
	}
	SortOldestFirst(out)
	return out, nil
}

// CredentialsPage implements Store: credentials come in the byte order of
// their IDs, and the cursor is the last ID of the page.
func (m *Memory) CredentialsPage(after []byte, limit int) ([]*Credential, []byte, error) {
	if limit <= 0 {
		return nil, nil, fmt.Errorf("keystore: page limit must be positive, got %d", limit)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	i := 0
	if after != nil {
		var found bool
		i, found = slices.BinarySearch(m.order, string(after))
		if found {
			i++
		}
	}
	end := min(i+limit, len(m.order))
	out := make([]*Credential, 0, end-i)
	for _, id := range m.order[i:end] {
		out = append(out, m.creds[id].Clone())
	}
	var next []byte
	if end < len(m.order) {
		next = []byte(m.order[end-1])
	}
	return out, next, nil
}

// DiscoverableCredentials implements Store.
func (m *Memory) DiscoverableCredentials(rpIDHash []byte) ([]*Credential, error) {
	return m.indexed(m.byRP, rpIDHash)
}

// NonDiscoverableCredentials implements Store.
func (m *Memory) NonDiscoverableCredentials(rpIDHash []byte) ([]*Credential, error) {
	return m.indexed(m.byRPND, rpIDHash)
}

// indexed returns the credentials idx lists under rpIDHash, oldest first.
func (m *Memory) indexed(idx map[[32]byte]map[string]bool, rpIDHash []byte) ([]*Credential, error) {
	if len(rpIDHash) != sha256.Size {
		return nil, fmt.Errorf("keystore: rpIdHash must be %d bytes, got %d", sha256.Size, len(rpIDHash))
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	ids := idx[[32]byte(rpIDHash)]
	out := make([]*Credential, 0, len(ids))
	for id := range ids {
		out = append(out, m.creds[id].Clone())
	}
	SortOldestFirst(out)
	return out, nil
}

// DiscoverableCount implements Store.
func (m *Memory) DiscoverableCount() (int, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.ndisc, nil
}

// DiscoverableRPs implements Store: the name is the oldest credential's.
func (m *Memory) DiscoverableRPs() ([]RPSummary, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]RPSummary, 0, len(m.byRP))
	for _, ids := range m.byRP {
		var first *Credential
		for id := range ids {
			if c := m.creds[id]; first == nil || olderThan(c, first) {
				first = c
			}
		}
		out = append(out, RPSummary{ID: first.RPID, Name: first.RPName})
	}
	sortRPs(out)
	return out, nil
}

// sortRPs orders summaries by RP ID.
func sortRPs(rps []RPSummary) {
	sort.Slice(rps, func(i, j int) bool { return rps[i].ID < rps[j].ID })
}

// SortOldestFirst orders credentials by creation time, then by ID, so that
// every store lists them the same way.
func SortOldestFirst(cs []*Credential) {
	sort.SliceStable(cs, func(i, j int) bool { return olderThan(cs[i], cs[j]) })
}

// olderThan is the order of SortOldestFirst.
func olderThan(a, b *Credential) bool {
	if !a.Created.Equal(b.Created) {
		return a.Created.Before(b.Created)
	}
	return bytes.Compare(a.ID, b.ID) < 0
}

// DeleteCredential implements Store.
func (m *Memory) DeleteCredential(id []byte) error {
	if id == nil {
		return errors.New("keystore: nil credential ID")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old, ok := m.creds[string(id)]
	if !ok {
		return ErrNotFound
	}
	m.removeLocked(old)
	return nil
}

// RemainingDiscoverable implements Store.
func (m *Memory) RemainingDiscoverable() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return remaining(m.maxDiscoverable, m.ndisc)
}

// CounterKey is the key under which the memory store keeps a credential's
// signature counter: the SHA-256 of its ID, so IDs are not kept whole.
func CounterKey(id []byte) [32]byte { return sha256.Sum256(id) }

// NextSignCount implements Store.
func (m *Memory) NextSignCount(id []byte) (uint32, error) {
	if id == nil {
		return 0, errors.New("keystore: nil credential ID")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ctr := m.counters[CounterKey(id)]
	if _, stored := m.creds[string(id)]; !stored {
		if ctr != nil && ctr.deleted {
			return 0, ErrDeleted
		}
		if m.global == math.MaxUint32 {
			return 0, ErrCounterExhausted
		}
		m.global++
		return m.global, nil
	}
	if ctr == nil {
		ctr = &memCounter{}
		m.counters[CounterKey(id)] = ctr
	}
	if ctr.value == math.MaxUint32 {
		return 0, ErrCounterExhausted // wrapping to 0 would repeat values
	}
	ctr.value++
	return ctr.value, nil
}

// SignCount implements Store.
func (m *Memory) SignCount(id []byte) (uint32, error) {
	if id == nil {
		return 0, errors.New("keystore: nil credential ID")
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	ctr := m.counters[CounterKey(id)]
	if _, stored := m.creds[string(id)]; !stored && (ctr == nil || !ctr.deleted) {
		return m.global, nil
	}
	if ctr == nil {
		return 0, nil
	}
	return ctr.value, nil
}

// SetSignCount implements Store.
func (m *Memory) SetSignCount(id []byte, n uint32) error {
	if id == nil {
		return errors.New("keystore: nil credential ID")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, stored := m.creds[string(id)]; !stored {
		return ErrNotFound
	}
	m.counters[CounterKey(id)] = &memCounter{value: n}
	return nil
}

// PINState implements Store.
func (m *Memory) PINState() (PINState, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	s := m.pin
	s.Hash = bytes.Clone(s.Hash)
	s.PersistentToken = bytes.Clone(s.PersistentToken)
	return s, nil
}

// SetPINState implements Store.
func (m *Memory) SetPINState(s PINState) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pin = s
	m.pin.Hash = bytes.Clone(s.Hash)
	m.pin.PersistentToken = bytes.Clone(s.PersistentToken)
	return nil
}

// Config implements Store.
func (m *Memory) Config() (Config, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	c := m.config
	c.MinPINLengthRPIDs = cloneStrings(c.MinPINLengthRPIDs)
	return c, nil
}

func cloneStrings(s []string) []string {
	if s == nil {
		return nil
	}
	return append([]string{}, s...)
}

// SetConfig implements Store.
func (m *Memory) SetConfig(c Config) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.config = c
	m.config.MinPINLengthRPIDs = cloneStrings(c.MinPINLengthRPIDs)
	return nil
}

// LargeBlobArray implements Store.
func (m *Memory) LargeBlobArray() ([]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return bytes.Clone(m.largeBlob), nil
}

// SetLargeBlobArray implements Store.
func (m *Memory) SetLargeBlobArray(b []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.largeBlob = append([]byte{}, b...)
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
