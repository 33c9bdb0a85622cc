package keystore

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// The Store methods of File: each reads or writes only the records it
// needs, in one transaction.

// Identity implements Store.
func (f *File) Identity() (*Identity, error) {
	var id Identity
	err := f.view(func(tx *bolt.Tx) error { return f.getCBOR(tx, bucketMeta, metaIdentity, &id) })
	if errors.Is(err, errAbsent) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return &id, nil
}

// SetIdentity implements Store.
func (f *File) SetIdentity(id *Identity) error {
	if id == nil {
		return errors.New("keystore: nil identity")
	}
	return f.update(func(tx *bolt.Tx) error { return f.putCBOR(tx, bucketMeta, metaIdentity, id) })
}

func (f *File) credentialTx(tx *bolt.Tx, ck []byte) (*Credential, error) {
	var c Credential
	if err := f.getCBOR(tx, bucketCreds, ck, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// indexKeys returns the rp and user index keys of a discoverable credential.
func (f *File) indexKeys(c *Credential, ck []byte) (rp, user []byte) {
	h := sha256.Sum256([]byte(c.RPID))
	rp = append(f.rpTag(h[:]), ck...)
	user = append(f.userTag(h[:], c.UserID), ck...)
	return rp, user
}

// ndrpKey is the bucketNDRP key of the non-discoverable credential c
// stored under ck.
func (f *File) ndrpKey(c *Credential, ck []byte) []byte {
	h := sha256.Sum256([]byte(c.RPID))
	return append(f.rpTag(h[:]), ck...)
}

// removeTx deletes the credential stored under ck (old is its record) with
// its index entries. A discoverable credential's counter goes with it (its
// ID names a discoverable credential, which is refused once not stored); a
// non-discoverable one leaves a tombstone holding its counter.
func (f *File) removeTx(tx *bolt.Tx, ck []byte, old *Credential) error {
	if err := tx.Bucket(bucketCreds).Delete(ck); err != nil {
		return err
	}
	if !old.Discoverable {
		if err := tx.Bucket(bucketNDRP).Delete(f.ndrpKey(old, ck)); err != nil {
			return err
		}
		rec, err := f.counterTx(tx, ck)
		if err != nil {
			return err
		}
		rec.deleted = true
		return f.put(tx, bucketCounters, ck, rec.encode())
	}
	rp, user := f.indexKeys(old, ck)
	if err := tx.Bucket(bucketRP).Delete(rp); err != nil {
		return err
	}
	if err := tx.Bucket(bucketUser).Delete(user); err != nil {
		return err
	}
	if err := tx.Bucket(bucketCounters).Delete(ck); err != nil {
		return err
	}
	n, err := f.metaUint(tx, metaNDisc)
	if err != nil {
		return err
	}
	if n > 0 {
		n--
	}
	return f.putMetaUint(tx, metaNDisc, n)
}

func (f *File) counterTx(tx *bolt.Tx, ck []byte) (counterRecord, error) {
	b, err := f.get(tx, bucketCounters, ck)
	if errors.Is(err, errAbsent) {
		return counterRecord{}, nil
	}
	if err != nil {
		return counterRecord{}, err
	}
	return decodeCounter(b)
}

// putCredentialTx stores c; with limit, a new discoverable credential that
// does not fit is refused with ErrFull.
// It reports whether c got a fresh counter.
func (f *File) putCredentialTx(tx *bolt.Tx, c *Credential, limit bool) (fresh bool, err error) {
	ck := f.credKey(c.ID)
	old, err := f.credentialTx(tx, ck[:])
	if err == nil && old.Discoverable {
		limit = false // not a new discoverable credential
	}
	switch {
	case err == nil:
		if old.Discoverable {
			if err := f.removeTx(tx, ck[:], old); err != nil {
				return false, err
			}
		} else if err := tx.Bucket(bucketCreds).Delete(ck[:]); err != nil {
			return false, err
		} else if err := tx.Bucket(bucketNDRP).Delete(f.ndrpKey(old, ck[:])); err != nil {
			return false, err
		}
	case !errors.Is(err, errAbsent):
		return false, err
	}
	if c.Discoverable {
		n, err := f.metaUint(tx, metaNDisc)
		if err != nil {
			return false, err
		}
		if limit && f.maxDiscoverable >= 0 && n >= uint64(f.maxDiscoverable) {
			return false, ErrFull
		}
		rp, user := f.indexKeys(c, ck[:])
		if err := tx.Bucket(bucketRP).Put(rp, nil); err != nil {
			return false, err
		}
		if err := tx.Bucket(bucketUser).Put(user, nil); err != nil {
			return false, err
		}
		if err := f.putMetaUint(tx, metaNDisc, n+1); err != nil {
			return false, err
		}
	} else if err := tx.Bucket(bucketNDRP).Put(f.ndrpKey(c, ck[:]), nil); err != nil {
		return false, err
	}
	// A credential stored again (a restore) keeps its counter but is no
	// longer deleted. A new one gets its first counter reservation in the
	// same transaction, so that makeCredential commits once.
	if b := tx.Bucket(bucketCounters).Get(ck[:]); b == nil {
		if err := f.put(tx, bucketCounters, ck[:], counterRecord{ceiling: f.block}.encode()); err != nil {
			return false, err
		}
		fresh = true
	} else if rec, err := f.counterTx(tx, ck[:]); err != nil {
		return false, err
	} else if rec.deleted {
		rec.deleted = false
		if err := f.put(tx, bucketCounters, ck[:], rec.encode()); err != nil {
			return false, err
		}
	}
	return fresh, f.putCBOR(tx, bucketCreds, ck[:], c)
}

// PutCredentials stores many credentials in one transaction, as
// PutCredential would one by one (ErrFull, and nothing stored, if the
// discoverable ones do not fit). It is for building large states at once:
// conversions, tests and benchmarks. New credentials are written in key
// order, bucket by bucket, which bbolt appends instead of inserting.
func (f *File) PutCredentials(cs []*Credential) error {
	for _, c := range cs {
		if err := checkCredential(c); err != nil {
			return err
		}
	}
	type kv struct{ k, v []byte }
	err := f.update(func(tx *bolt.Tx) error {
		n, err := f.metaUint(tx, metaNDisc)
		if err != nil {
			return err
		}
		lists := map[string][]kv{}
		add := func(bucket, k, plain []byte) error {
			if plain == nil {
				lists[string(bucket)] = append(lists[string(bucket)], kv{k, nil})
				return nil
			}
			out := make([]byte, gcmNonceSize, gcmNonceSize+len(plain)+f.aead.Overhead())
			if _, err := rand.Read(out); err != nil {
				return err
			}
			lists[string(bucket)] = append(lists[string(bucket)], kv{k, f.aead.Seal(out, out[:gcmNonceSize], plain, recordAD(bucket, k))})
			return nil
		}
		seen := map[[credKeySize]byte]bool{}
		for _, c := range cs {
			ck := f.credKey(c.ID)
			if seen[ck] || tx.Bucket(bucketCreds).Get(ck[:]) != nil || tx.Bucket(bucketCounters).Get(ck[:]) != nil {
				// Present already (or twice here): the general path, after.
				continue
			}
			seen[ck] = true
			b, err := storeEnc.Marshal(c)
			if err != nil {
				return fmt.Errorf("keystore: encode: %w", err)
			}
			if err := add(bucketCreds, ck[:], b); err != nil {
				return err
			}
			if err := add(bucketCounters, ck[:], counterRecord{ceiling: f.block}.encode()); err != nil {
				return err
			}
			if c.Discoverable {
				if f.maxDiscoverable >= 0 && n >= uint64(f.maxDiscoverable) {
					return ErrFull
				}
				n++
				rp, user := f.indexKeys(c, ck[:])
				_ = add(bucketRP, rp, nil)
				_ = add(bucketUser, user, nil)
			} else {
				_ = add(bucketNDRP, f.ndrpKey(c, ck[:]), nil)
			}
		}
		for name, l := range lists {
			slices.SortFunc(l, func(a, b kv) int { return bytes.Compare(a.k, b.k) })
			bk := tx.Bucket([]byte(name))
			for _, e := range l {
				if err := bk.Put(e.k, e.v); err != nil {
					return err
				}
			}
		}
		if err := f.putMetaUint(tx, metaNDisc, n); err != nil {
			return err
		}
		for _, c := range cs {
			if ck := f.credKey(c.ID); !seen[ck] {
				if _, err := f.putCredentialTx(tx, c, true); err != nil {
					return err
				}
			} else {
				delete(seen, ck) // a second copy of the same ID: general path
			}
		}
		return nil
	})
	if err == nil {
		for _, c := range cs {
			f.forgetCounter(c.ID)
		}
	}
	return err
}

func checkCredential(c *Credential) error {
	if c == nil {
		return errors.New("keystore: nil credential")
	}
	if len(c.ID) == 0 {
		return errors.New("keystore: credential without ID")
	}
	return nil
}

// PutCredential implements Store.
func (f *File) PutCredential(c *Credential) error {
	if err := checkCredential(c); err != nil {
		return err
	}
	var fresh bool
	err := f.update(func(tx *bolt.Tx) (err error) {
		fresh, err = f.putCredentialTx(tx, c, true)
		return err
	})
	if err == nil {
		f.stored(c.ID, fresh)
	}
	return err
}

// stored updates the counter cache after a credential was stored: a fresh
// one starts at 0 below the reservation made with it; any other reads
// what the store says at its next use.
func (f *File) stored(id []byte, fresh bool) {
	f.leaseMu.Lock()
	defer f.leaseMu.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.unstored, string(id))
	if fresh {
		f.counters[string(id)] = &counter{reserved: f.block, block: f.block}
	} else {
		delete(f.counters, string(id))
	}
}

// PutDiscoverable implements Store.
func (f *File) PutDiscoverable(c *Credential) ([][]byte, error) {
	if err := checkCredential(c); err != nil {
		return nil, err
	}
	if !c.Discoverable {
		return nil, errors.New("keystore: PutDiscoverable of a non-discoverable credential")
	}
	var replaced [][]byte
	var keys [][]byte
	var fresh bool
	err := f.update(func(tx *bolt.Tx) error {
		replaced, keys = nil, nil
		h := sha256.Sum256([]byte(c.RPID))
		prefix := f.userTag(h[:], c.UserID)
		own := f.credKey(c.ID)
		var victims [][]byte
		cur := tx.Bucket(bucketUser).Cursor()
		for k, _ := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = cur.Next() {
			ck := k[len(prefix):]
			if !bytes.Equal(ck, own[:]) {
				victims = append(victims, append([]byte(nil), ck...))
			}
		}
		for _, ck := range victims {
			old, err := f.credentialTx(tx, ck)
			if err != nil {
				return err
			}
			if old.RPID != c.RPID || !bytes.Equal(old.UserID, c.UserID) {
				continue // a MAC collision cannot happen; be safe anyway
			}
			if err := f.removeTx(tx, ck, old); err != nil {
				return err
			}
			replaced = append(replaced, old.ID)
			keys = append(keys, old.ID)
		}
		// A replacement does not grow the store: it fits even in a store
		// holding more than its limit.
		var err error
		fresh, err = f.putCredentialTx(tx, c, len(replaced) == 0)
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		f.forgetCounter(k)
	}
	f.stored(c.ID, fresh)
	return replaced, nil
}

// Credential implements Store.
func (f *File) Credential(id []byte) (*Credential, error) {
	if id == nil {
		return nil, errors.New("keystore: nil credential ID")
	}
	c, gen := f.cache.get(id)
	if c != nil {
		return c, nil
	}
	ck := f.credKey(id)
	err := f.view(func(tx *bolt.Tx) error {
		var err error
		c, err = f.credentialTx(tx, ck[:])
		if !errors.Is(err, errAbsent) {
			return err
		}
		rec, err := f.counterTx(tx, ck[:])
		if err != nil {
			return err
		}
		if rec.deleted {
			return ErrDeleted
		}
		return ErrNotFound
	})
	if err != nil {
		return nil, err
	}
	f.cache.add(gen, c)
	return c, nil
}

// Credentials implements Store.
func (f *File) Credentials() ([]*Credential, error) {
	var out []*Credential
	err := f.view(func(tx *bolt.Tx) error {
		out = nil
		return tx.Bucket(bucketCreds).ForEach(func(k, _ []byte) error {
			c, err := f.credentialTx(tx, k)
			if err != nil {
				return err
			}
			out = append(out, c)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = []*Credential{}
	}
	SortOldestFirst(out)
	return out, nil
}

// CredentialsPage implements Store: credentials come in the order of their
// record keys (a MAC of the ID: stable, unrelated to anything else), and
// the cursor is the last record key of the page. One read transaction
// decrypts the page's records, and no other.
func (f *File) CredentialsPage(after []byte, limit int) ([]*Credential, []byte, error) {
	if limit <= 0 {
		return nil, nil, fmt.Errorf("keystore: page limit must be positive, got %d", limit)
	}
	var out []*Credential
	var next []byte
	err := f.view(func(tx *bolt.Tx) error {
		out, next = make([]*Credential, 0, min(limit, 1024)), nil
		cur := tx.Bucket(bucketCreds).Cursor()
		k, _ := cur.First()
		if after != nil {
			if k, _ = cur.Seek(after); k != nil && bytes.Equal(k, after) {
				k, _ = cur.Next()
			}
		}
		var last []byte
		for ; k != nil; k, _ = cur.Next() {
			if len(out) == limit {
				next = append([]byte(nil), last...) // keys live as long as tx
				return nil
			}
			c, err := f.credentialTx(tx, k)
			if err != nil {
				return err
			}
			out, last = append(out, c), k
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return out, next, nil
}

// DiscoverableCredentials implements Store.
func (f *File) DiscoverableCredentials(rpIDHash []byte) ([]*Credential, error) {
	return f.indexedCredentials(bucketRP, rpIDHash)
}

// NonDiscoverableCredentials implements Store.
func (f *File) NonDiscoverableCredentials(rpIDHash []byte) ([]*Credential, error) {
	return f.indexedCredentials(bucketNDRP, rpIDHash)
}

// indexedCredentials returns the credentials the index bucket (keys
// rpTag(rpIdHash) || credKey) lists under rpIDHash, oldest first.
func (f *File) indexedCredentials(bucket, rpIDHash []byte) ([]*Credential, error) {
	if len(rpIDHash) != sha256.Size {
		return nil, fmt.Errorf("keystore: rpIdHash must be %d bytes, got %d", sha256.Size, len(rpIDHash))
	}
	prefix := f.rpTag(rpIDHash)
	out := []*Credential{}
	err := f.view(func(tx *bolt.Tx) error {
		out = out[:0]
		cur := tx.Bucket(bucket).Cursor()
		for k, _ := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = cur.Next() {
			c, err := f.credentialTx(tx, k[len(prefix):])
			if err != nil {
				return err
			}
			if h := sha256.Sum256([]byte(c.RPID)); bytes.Equal(h[:], rpIDHash) {
				out = append(out, c)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	SortOldestFirst(out)
	return out, nil
}

// DiscoverableRPs implements Store. The rp index keys are
// rpTag(rpIdHash) || credKey with a fixed-length tag, so it skip-scans:
// it decrypts the first credential under a tag (for the RP ID and name)
// and seeks past the tag, to the next relying party's first key. It
// decrypts one record and makes one seek per relying party, whatever the
// number of credentials each has.
func (f *File) DiscoverableRPs() ([]RPSummary, error) {
	var out []RPSummary
	err := f.view(func(tx *bolt.Tx) error {
		out = []RPSummary{}
		cur := tx.Bucket(bucketRP).Cursor()
		for k, _ := cur.First(); k != nil; {
			if len(k) != tagSize+credKeySize {
				return fmt.Errorf("keystore: rp index key of %d bytes", len(k))
			}
			c, err := f.credentialTx(tx, k[tagSize:])
			if err != nil {
				return err
			}
			// Two RPs whose 128-bit tags collide would be listed as one:
			// as likely as a collision of the index keys themselves.
			out = append(out, RPSummary{ID: c.RPID, Name: c.RPName})
			next, ok := prefixEnd(k[:tagSize])
			if !ok {
				break // the last possible tag
			}
			k, _ = cur.Seek(next)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sortRPs(out)
	return out, nil
}

// prefixEnd returns the smallest key greater than every key that starts
// with prefix; ok is false when there is none (prefix is all 0xff).
func prefixEnd(prefix []byte) (end []byte, ok bool) {
	end = append([]byte(nil), prefix...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i]++; end[i] != 0 {
			return end[:i+1], true
		}
	}
	return nil, false
}

// DiscoverableCount implements Store.
func (f *File) DiscoverableCount() (int, error) {
	var n uint64
	err := f.view(func(tx *bolt.Tx) error {
		var err error
		n, err = f.metaUint(tx, metaNDisc)
		return err
	})
	return int(n), err
}

// DeleteCredential implements Store.
func (f *File) DeleteCredential(id []byte) error {
	if id == nil {
		return errors.New("keystore: nil credential ID")
	}
	ck := f.credKey(id)
	err := f.update(func(tx *bolt.Tx) error {
		old, err := f.credentialTx(tx, ck[:])
		if errors.Is(err, errAbsent) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		return f.removeTx(tx, ck[:], old)
	})
	if err == nil {
		f.forgetCounter(id)
	}
	return err
}

// RemainingDiscoverable implements Store.
func (f *File) RemainingDiscoverable() int {
	n, err := f.DiscoverableCount()
	if err != nil {
		return 0
	}
	return remaining(f.maxDiscoverable, n)
}

// remaining is how many more discoverable credentials fit under limit when n
// are stored: never negative (a state above its limit holds 0 more).
func remaining(limit, n int) int {
	if limit < 0 {
		return unlimitedRemaining
	}
	return min(unlimitedRemaining, max(limit-n, 0))
}

// MaxDiscoverable returns the limit the store was opened with (Unlimited
// when there is none).
func (f *File) MaxDiscoverable() int {
	if f.maxDiscoverable < 0 {
		return Unlimited
	}
	return f.maxDiscoverable
}

// forgetCounter drops the cached counter of a credential ID, so that the
// next use reads what the store now says.
func (f *File) forgetCounter(id []byte) {
	f.leaseMu.Lock() // after a reservation in flight has cached its counter
	defer f.leaseMu.Unlock()
	f.mu.Lock()
	delete(f.counters, string(id))
	delete(f.unstored, string(id))
	f.mu.Unlock()
}

// rememberUnstored notes, with f.mu held, that id is not stored.
func (f *File) rememberUnstored(id []byte) {
	if f.unstored == nil || len(f.unstored) >= unstoredCacheSize {
		f.unstored = make(map[string]struct{}, unstoredCacheSize)
	}
	f.unstored[string(id)] = struct{}{}
}

// NextSignCount implements Store. A credential in the store has its own
// counter; every other ID (non-discoverable, device-bound credentials and
// U2F key handles, whose IDs carry their keys) shares one global counter,
// as YubiKeys and most hardware keys do, so that they leave no record
// behind. The value is incremented in memory and the store is written
// only when it crosses the ceiling reserved on disk, reserving a new block
// ahead; after a crash the counter resumes above the ceiling, so no value
// is ever handed out twice.
func (f *File) NextSignCount(id []byte) (uint32, error) {
	if id == nil {
		return 0, errors.New("keystore: nil credential ID")
	}
	if f.closed.Load() {
		return 0, ErrClosed
	}
	f.mu.Lock()
	c := f.counters[string(id)]
	if _, ok := f.unstored[string(id)]; ok {
		c = f.global
	}
	if c != nil && c.value < c.reserved {
		c.value++
		v := c.value
		f.mu.Unlock()
		return v, nil
	}
	f.mu.Unlock()
	ck := f.credKey(id)
	// Not a stored credential in use (or its reservation is used up): look
	// without writing whether it is stored; the global counter of the
	// others needs no write either while its reservation lasts.
	var stored, deleted bool
	err := f.view(func(tx *bolt.Tx) error {
		if stored = tx.Bucket(bucketCreds).Get(ck[:]) != nil; stored {
			return nil
		}
		rec, err := f.counterTx(tx, ck[:])
		deleted = rec.deleted
		return err
	})
	switch {
	case err != nil:
		return 0, err
	case deleted:
		return 0, ErrDeleted
	case !stored:
		f.mu.Lock()
		if g := f.global; g != nil && g.value < g.reserved {
			f.rememberUnstored(id)
			g.value++
			v := g.value
			f.mu.Unlock()
			return v, nil
		}
		f.mu.Unlock()
	}
	return f.nextSlow(id, ck)
}

// nextSlow loads or reserves ahead the counter of id (whose key is ck),
// in one transaction.
func (f *File) nextSlow(id []byte, ck [credKeySize]byte) (uint32, error) {
	f.leaseMu.Lock()
	defer f.leaseMu.Unlock()
	var c *counter
	var global, reserve bool
	err := f.update(func(tx *bolt.Tx) error {
		global = tx.Bucket(bucketCreds).Get(ck[:]) == nil
		rec, err := f.counterTx(tx, ck[:])
		if err != nil {
			return err
		}
		if global {
			if rec.deleted {
				return ErrDeleted
			}
			g, err := f.metaUint(tx, metaGlobal)
			if err != nil {
				return err
			}
			rec = counterRecord{ceiling: uint32(min(g, math.MaxUint32))}
		}
		f.mu.Lock()
		c = f.counters[string(id)]
		if global {
			c = f.global
		}
		if c == nil {
			c = &counter{value: rec.ceiling, reserved: rec.ceiling, block: f.block}
		}
		reserve = c.value >= c.reserved
		value, block := c.value, c.block
		f.mu.Unlock()
		if !reserve { // loaded from the cache of another key: nothing to write
			return nil
		}
		if value == math.MaxUint32 {
			return ErrCounterExhausted
		}
		ceiling := uint32(min(uint64(value)+uint64(block), math.MaxUint32))
		if global {
			return f.putMetaUint(tx, metaGlobal, uint64(ceiling))
		}
		return f.put(tx, bucketCounters, ck[:], counterRecord{ceiling: ceiling}.encode())
	})
	if err != nil {
		return 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if reserve {
		c.reserved = uint32(min(uint64(c.value)+uint64(c.block), math.MaxUint32))
		// This counter is busy: reserve more next time (bounded by the
		// number of values actually used, so a crash wastes little).
		if c.block < maxReserveBlock {
			c.block *= 2
		}
	}
	if global {
		f.global = c
		f.rememberUnstored(id)
	} else {
		f.counters[string(id)] = c
	}
	c.value++
	return c.value, nil
}

// SignCount implements Store. After a restart it is the reserved ceiling,
// which may exceed the last value handed out before the restart (the
// values in between are skipped, never reused). For an ID not in the
// store it is the global counter.
func (f *File) SignCount(id []byte) (uint32, error) {
	if id == nil {
		return 0, errors.New("keystore: nil credential ID")
	}
	f.mu.Lock()
	if c := f.counters[string(id)]; c != nil {
		v := c.value
		f.mu.Unlock()
		return v, nil
	}
	g := f.global
	f.mu.Unlock()
	ck := f.credKey(id)
	var n uint32
	err := f.view(func(tx *bolt.Tx) error {
		rec, err := f.counterTx(tx, ck[:])
		if err != nil {
			return err
		}
		if tx.Bucket(bucketCreds).Get(ck[:]) != nil || rec.deleted {
			n = rec.ceiling
			return nil
		}
		if g != nil {
			f.mu.Lock()
			n = g.value
			f.mu.Unlock()
			return nil
		}
		v, err := f.metaUint(tx, metaGlobal)
		n = uint32(min(v, math.MaxUint32))
		return err
	})
	return n, err
}

// SetSignCount implements Store. The new value is persisted before it
// returns; an ID that is not stored has no counter of its own to set
// (ErrNotFound).
func (f *File) SetSignCount(id []byte, n uint32) error {
	if id == nil {
		return errors.New("keystore: nil credential ID")
	}
	ck := f.credKey(id)
	f.leaseMu.Lock()
	defer f.leaseMu.Unlock()
	err := f.update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketCreds).Get(ck[:]) == nil {
			return ErrNotFound
		}
		return f.put(tx, bucketCounters, ck[:], counterRecord{ceiling: n}.encode())
	})
	if err != nil {
		return err
	}
	f.mu.Lock()
	delete(f.unstored, string(id))
	f.counters[string(id)] = &counter{value: n, reserved: n, block: f.block}
	f.mu.Unlock()
	return nil
}

// PINState implements Store.
func (f *File) PINState() (PINState, error) {
	var s PINState
	err := f.view(func(tx *bolt.Tx) error { return f.getCBOR(tx, bucketMeta, metaPIN, &s) })
	return s, err
}

// SetPINState implements Store.
func (f *File) SetPINState(s PINState) error {
	return f.update(func(tx *bolt.Tx) error { return f.putCBOR(tx, bucketMeta, metaPIN, s) })
}

// Config implements Store.
func (f *File) Config() (Config, error) {
	var c Config
	err := f.view(func(tx *bolt.Tx) error {
		err := f.getCBOR(tx, bucketMeta, metaConfig, &c)
		if errors.Is(err, errAbsent) {
			return nil
		}
		return err
	})
	return c, err
}

// SetConfig implements Store.
func (f *File) SetConfig(c Config) error {
	return f.update(func(tx *bolt.Tx) error { return f.putCBOR(tx, bucketMeta, metaConfig, c) })
}

// LargeBlobArray implements Store.
func (f *File) LargeBlobArray() ([]byte, error) {
	var b []byte
	err := f.view(func(tx *bolt.Tx) error {
		var err error
		b, err = f.get(tx, bucketMeta, metaLargeBlob)
		switch {
		case errors.Is(err, errAbsent):
			b = nil
			return nil
		case err == nil && b == nil:
			b = []byte{} // written empty
		}
		return err
	})
	return b, err
}

// SetLargeBlobArray implements Store.
func (f *File) SetLargeBlobArray(b []byte) error {
	if b == nil {
		b = []byte{}
	}
	return f.update(func(tx *bolt.Tx) error { return f.put(tx, bucketMeta, metaLargeBlob, b) })
}

// Reset implements Store.
func (f *File) Reset() error {
	f.leaseMu.Lock()
	defer f.leaseMu.Unlock()
	err := f.update(func(tx *bolt.Tx) error {
		var id *Identity
		var cur Identity
		switch err := f.getCBOR(tx, bucketMeta, metaIdentity, &cur); {
		case err == nil:
			id = &cur
		case !errors.Is(err, errAbsent):
			return err
		}
		for _, name := range allBuckets {
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
		}
		if err := f.initTx(tx); err != nil {
			return err
		}
		if id == nil {
			return nil
		}
		k := make([]byte, 32)
		if _, err := rand.Read(k); err != nil {
			return fmt.Errorf("keystore: reset: %w", err)
		}
		id.WrapKey = k
		return f.putCBOR(tx, bucketMeta, metaIdentity, id)
	})
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.counters = map[string]*counter{}
	f.unstored = nil
	f.global = nil
	f.mu.Unlock()
	return nil
}

// Close implements Store. Counter reservations are already on disk, so
// Close only closes the database and releases the lock; later calls fail
// with ErrClosed.
func (f *File) Close() error {
	if f.closed.Swap(true) {
		return nil
	}
	f.leaseMu.Lock()
	defer f.leaseMu.Unlock()
	err := f.db.Close()
	unlockDir(f.lock)
	return err
}
