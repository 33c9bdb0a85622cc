// Package storetest is the conformance suite of keystore.Store, in the
// manner of testing/fstest: every implementation runs it, so that the
// memory store and the persistent store keep one contract (every method,
// error cases, deep copies, nil inputs, concurrent use).
package storetest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/vkey-dev/vkey/keystore"
)

// Factory returns a new, empty store holding at most maxDiscoverable
// discoverable credentials (keystore.DefaultMaxDiscoverable if 0, no limit
// if keystore.Unlimited). The factory arranges for the store to be closed.
type Factory func(t *testing.T, maxDiscoverable int) keystore.Store

// Run runs the conformance suite against stores made by newStore.
func Run(t *testing.T, newStore Factory) {
	tests := []struct {
		name string
		fn   func(*testing.T, Factory)
	}{
		{"Identity", testIdentity},
		{"Credentials", testCredentials},
		{"CredentialsPage", testCredentialsPage},
		{"DeepCopies", testDeepCopies},
		{"NilInputs", testNilInputs},
		{"Discoverable", testDiscoverable},
		{"NonDiscoverable", testNonDiscoverable},
		{"DiscoverableRPs", testDiscoverableRPs},
		{"Limit", testLimit},
		{"PutDiscoverable", testPutDiscoverable},
		{"Delete", testDelete},
		{"Counters", testCounters},
		{"PINConfigLargeBlob", testPINConfigLargeBlob},
		{"Reset", testReset},
		{"Concurrent", testConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore) })
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var base = time.Date(2025, 1, 2, 3, 4, 5, 6789, time.UTC)

// Cred returns a credential with every field set; n orders creation.
func Cred(id, rpID, user string, discoverable bool, n int) *keystore.Credential {
	return &keystore.Credential{
		ID: []byte(id), RPID: rpID, RPName: "RP " + rpID,
		UserID: []byte(user), UserName: "name-" + user, UserDisplayName: "Display " + user,
		Algorithm: keystore.AlgES256, Provider: keystore.SoftwareProviderName,
		KeyBlob: []byte("key-" + id), Discoverable: discoverable, CredProtect: 2,
		CredRandomWithUV: bytes.Repeat([]byte{1}, 32), CredRandomWithoutUV: bytes.Repeat([]byte{2}, 32),
		CredBlob: []byte("blob"), LargeBlobKey: bytes.Repeat([]byte{3}, 32),
		BackupEligible: true, Created: base.Add(time.Duration(n) * time.Second),
		PublicKey: []byte{0xa5, 1, 2}, HMACSecret: true,
	}
}

func rpHash(rpID string) []byte {
	h := sha256.Sum256([]byte(rpID))
	return h[:]
}

func same(a, b *keystore.Credential) bool {
	if a == nil || b == nil {
		return a == b
	}
	x, y := *a, *b
	if !x.Created.Equal(y.Created) {
		return false
	}
	x.Created, y.Created = time.Time{}, time.Time{}
	return reflect.DeepEqual(x, y)
}

func ids(cs []*keystore.Credential) []string {
	out := []string{}
	for _, c := range cs {
		out = append(out, string(c.ID))
	}
	return out
}

func testIdentity(t *testing.T, newStore Factory) {
	s := newStore(t, 0)
	if _, err := s.Identity(); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("Identity of a new store: %v, want ErrNotFound", err)
	}
	id := &keystore.Identity{WrapKey: bytes.Repeat([]byte{7}, 32), AttestationCACert: []byte("ca"), AttestationKey: []byte("k")}
	must(t, s.SetIdentity(id))
	got, err := s.Identity()
	must(t, err)
	if !reflect.DeepEqual(got, id) {
		t.Fatalf("Identity %+v, want %+v", got, id)
	}
}

func testCredentials(t *testing.T, newStore Factory) {
	s := newStore(t, 0)
	all, err := s.Credentials()
	if err != nil || len(all) != 0 {
		t.Fatalf("Credentials of a new store: %d, %v", len(all), err)
	}
	in := []*keystore.Credential{Cred("c", "b.example", "u3", false, 3), Cred("a", "a.example", "u1", true, 1), Cred("b", "a.example", "u2", true, 2)}
	for _, c := range in {
		must(t, s.PutCredential(c))
	}
	got, err := s.Credential([]byte("c"))
	must(t, err)
	if !same(got, in[0]) {
		t.Fatalf("Credential %+v, want %+v", got, in[0])
	}
	if _, err := s.Credential([]byte("nope")); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("unknown ID: %v", err)
	}
	all, err = s.Credentials()
	must(t, err)
	if want := []string{"a", "b", "c"}; !reflect.DeepEqual(ids(all), want) {
		t.Fatalf("Credentials %q, want oldest first %q", ids(all), want)
	}
	// Replacing by ID keeps one.
	up := Cred("a", "a.example", "u1", true, 1)
	up.UserName = "renamed"
	must(t, s.PutCredential(up))
	got, err = s.Credential([]byte("a"))
	must(t, err)
	if got.UserName != "renamed" {
		t.Fatalf("update lost: %q", got.UserName)
	}
	if n, err := s.DiscoverableCount(); err != nil || n != 2 {
		t.Fatalf("DiscoverableCount %d, %v; want 2", n, err)
	}
	// Discoverable to non-discoverable and back keeps the count right.
	must(t, s.PutCredential(Cred("a", "a.example", "u1", false, 1)))
	if n, _ := s.DiscoverableCount(); n != 1 {
		t.Fatalf("DiscoverableCount %d after a credential stopped being discoverable, want 1", n)
	}
	if d, _ := s.DiscoverableCredentials(rpHash("a.example")); !reflect.DeepEqual(ids(d), []string{"b"}) {
		t.Fatalf("index kept a non-discoverable credential: %q", ids(d))
	}
}

func testDeepCopies(t *testing.T, newStore Factory) {
	s := newStore(t, 0)
	c := Cred("a", "a.example", "u", true, 1)
	must(t, s.PutCredential(c))
	c.KeyBlob[0] ^= 0xff
	c.UserID[0] ^= 0xff
	got, err := s.Credential([]byte("a"))
	must(t, err)
	if !same(got, Cred("a", "a.example", "u", true, 1)) {
		t.Fatal("PutCredential kept the caller's slices")
	}
	got.KeyBlob[0] ^= 0xff
	got.ID[0] ^= 0xff
	for _, list := range [][]*keystore.Credential{must2(s.Credentials()), must2(s.DiscoverableCredentials(rpHash("a.example")))} {
		list[0].CredRandomWithUV[0] ^= 0xff
	}
	again, err := s.Credential([]byte("a"))
	must(t, err)
	if !same(again, Cred("a", "a.example", "u", true, 1)) {
		t.Fatal("a returned credential shares memory with the store")
	}

	id := &keystore.Identity{WrapKey: bytes.Repeat([]byte{7}, 32)}
	must(t, s.SetIdentity(id))
	id.WrapKey[0] = 0
	gi, err := s.Identity()
	must(t, err)
	gi.WrapKey[1] = 0
	gi2, err := s.Identity()
	must(t, err)
	if !bytes.Equal(gi2.WrapKey, bytes.Repeat([]byte{7}, 32)) {
		t.Fatal("Identity shares memory")
	}

	pin := keystore.PINState{Hash: []byte("0123456789abcdef"), Retries: 8, PersistentToken: []byte("persistent-token")}
	must(t, s.SetPINState(pin))
	pin.Hash[0], pin.PersistentToken[0] = 'X', 'X'
	gp, err := s.PINState()
	must(t, err)
	gp.Hash[1], gp.PersistentToken[1] = 'X', 'X'
	if gp2, _ := s.PINState(); string(gp2.Hash) != "0123456789abcdef" || string(gp2.PersistentToken) != "persistent-token" {
		t.Fatal("PINState shares memory")
	}

	cfg := keystore.Config{MinPINLengthRPIDs: []string{"a"}}
	must(t, s.SetConfig(cfg))
	cfg.MinPINLengthRPIDs[0] = "x"
	gc, err := s.Config()
	must(t, err)
	gc.MinPINLengthRPIDs[0] = "y"
	if gc2, _ := s.Config(); !reflect.DeepEqual(gc2.MinPINLengthRPIDs, []string{"a"}) {
		t.Fatal("Config shares memory")
	}

	lb := []byte("blob")
	must(t, s.SetLargeBlobArray(lb))
	lb[0] = 'X'
	gl, err := s.LargeBlobArray()
	must(t, err)
	gl[1] = 'X'
	if gl2, _ := s.LargeBlobArray(); string(gl2) != "blob" {
		t.Fatal("LargeBlobArray shares memory")
	}
}

func must2[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func testNilInputs(t *testing.T, newStore Factory) {
	s := newStore(t, 0)
	check := func(name string, err error) {
		t.Helper()
		if err == nil {
			t.Errorf("%s accepted nil", name)
		}
	}
	check("SetIdentity(nil)", s.SetIdentity(nil))
	check("PutCredential(nil)", s.PutCredential(nil))
	check("PutCredential(no ID)", s.PutCredential(&keystore.Credential{RPID: "x"}))
	_, err := s.PutDiscoverable(nil)
	check("PutDiscoverable(nil)", err)
	_, err = s.PutDiscoverable(Cred("a", "a.example", "u", false, 1))
	check("PutDiscoverable(non-discoverable)", err)
	_, err = s.Credential(nil)
	check("Credential(nil)", err)
	_, err = s.DiscoverableCredentials(nil)
	check("DiscoverableCredentials(nil)", err)
	_, err = s.DiscoverableCredentials([]byte("short"))
	check("DiscoverableCredentials(short)", err)
	check("DeleteCredential(nil)", s.DeleteCredential(nil))
	_, err = s.NextSignCount(nil)
	check("NextSignCount(nil)", err)
	_, err = s.SignCount(nil)
	check("SignCount(nil)", err)
	check("SetSignCount(nil)", s.SetSignCount(nil, 1))
	// Nil slices where a value is optional are fine.
	must(t, s.SetPINState(keystore.PINState{}))
	must(t, s.SetConfig(keystore.Config{}))
	must(t, s.SetLargeBlobArray(nil))
}

func testDiscoverable(t *testing.T, newStore Factory) {
	s := newStore(t, 0)
	for i, c := range []*keystore.Credential{
		Cred("a2", "a.example", "u2", true, 2), Cred("a1", "a.example", "u1", true, 1),
		Cred("b1", "b.example", "u1", true, 3), Cred("a-nd", "a.example", "u9", false, 4),
	} {
		if err := s.PutCredential(c); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	got, err := s.DiscoverableCredentials(rpHash("a.example"))
	must(t, err)
	if want := []string{"a1", "a2"}; !reflect.DeepEqual(ids(got), want) {
		t.Fatalf("a.example: %q, want %q", ids(got), want)
	}
	got, err = s.DiscoverableCredentials(rpHash("none.example"))
	if err != nil || len(got) != 0 {
		t.Fatalf("unknown RP: %q, %v", ids(got), err)
	}
	if n, _ := s.DiscoverableCount(); n != 3 {
		t.Fatalf("DiscoverableCount %d, want 3", n)
	}
}

// wantRPs checks DiscoverableRPs against want (RP ID: how many
// discoverable credentials it has): ordered by RP ID, each named as one of
// its credentials is.
func wantRPs(t *testing.T, s keystore.Store, want map[string]int) {
	t.Helper()
	rps, err := s.DiscoverableRPs()
	must(t, err)
	if rps == nil {
		t.Fatal("DiscoverableRPs: nil, want an empty list")
	}
	got := map[string]int{}
	for i, rp := range rps {
		if i > 0 && rps[i-1].ID >= rp.ID {
			t.Errorf("DiscoverableRPs not ordered by RP ID: %q before %q", rps[i-1].ID, rp.ID)
		}
		creds, err := s.DiscoverableCredentials(rpHash(rp.ID))
		must(t, err)
		got[rp.ID] = len(creds)
		named := false
		for _, c := range creds {
			named = named || c.RPName == rp.Name
		}
		if !named {
			t.Errorf("RP %q named %q, as none of its credentials", rp.ID, rp.Name)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("DiscoverableRPs %v, want %v", got, want)
	}
}

func testDiscoverableRPs(t *testing.T, newStore Factory) {
	s := newStore(t, keystore.Unlimited)
	wantRPs(t, s, map[string]int{})
	for _, c := range []*keystore.Credential{
		Cred("a1", "a.example", "u1", true, 1), Cred("a2", "a.example", "u2", true, 2),
		Cred("b1", "b.example", "u1", true, 3), Cred("c-nd", "c.example", "u1", false, 4),
		Cred("a-nd", "a.example", "u9", false, 5),
	} {
		must(t, s.PutCredential(c))
	}
	wantRPs(t, s, map[string]int{"a.example": 2, "b.example": 1})
	rps, err := s.DiscoverableRPs()
	must(t, err)
	if rps[0] != (keystore.RPSummary{ID: "a.example", Name: "RP a.example"}) {
		t.Fatalf("DiscoverableRPs[0] %+v", rps[0])
	}
	// A replacement by ID, by user handle, or to non-discoverable.
	moved := Cred("a2", "b.example", "u2", true, 2)
	must(t, s.PutCredential(moved))
	wantRPs(t, s, map[string]int{"a.example": 1, "b.example": 2})
	must1[[][]byte](t)(s.PutDiscoverable(Cred("b1-new", "b.example", "u1", true, 6)))
	wantRPs(t, s, map[string]int{"a.example": 1, "b.example": 2})
	must(t, s.PutCredential(Cred("a1", "a.example", "u1", false, 1)))
	wantRPs(t, s, map[string]int{"b.example": 2})
	// Deletes, and tombstones that do not count.
	must(t, s.DeleteCredential([]byte("a-nd")))
	must(t, s.DeleteCredential([]byte("a1")))
	must(t, s.DeleteCredential([]byte("a2")))
	wantRPs(t, s, map[string]int{"b.example": 1})
	must(t, s.PutCredential(Cred("a1", "a.example", "u1", true, 1))) // restored
	wantRPs(t, s, map[string]int{"a.example": 1, "b.example": 1})
	for i := range 50 {
		must(t, s.PutCredential(Cred(fmt.Sprint("m", i), fmt.Sprintf("rp%02d.example", i%7), fmt.Sprint("u", i), true, 10+i)))
	}
	want := map[string]int{"a.example": 1, "b.example": 1}
	for i := range 50 {
		want[fmt.Sprintf("rp%02d.example", i%7)]++
	}
	wantRPs(t, s, want)
	must(t, s.Reset())
	wantRPs(t, s, map[string]int{})
}

func testLimit(t *testing.T, newStore Factory) {
	s := newStore(t, 2)
	if r := s.RemainingDiscoverable(); r != 2 {
		t.Fatalf("RemainingDiscoverable %d, want 2", r)
	}
	must(t, s.PutCredential(Cred("a", "a.example", "u1", true, 1)))
	must(t, s.PutCredential(Cred("b", "a.example", "u2", true, 2)))
	if err := s.PutCredential(Cred("c", "a.example", "u3", true, 3)); !errors.Is(err, keystore.ErrFull) {
		t.Fatalf("third discoverable: %v, want ErrFull", err)
	}
	if _, err := s.PutDiscoverable(Cred("c", "a.example", "u3", true, 3)); !errors.Is(err, keystore.ErrFull) {
		t.Fatalf("third discoverable through PutDiscoverable: %v, want ErrFull", err)
	}
	if _, err := s.Credential([]byte("c")); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatal("a refused credential was stored")
	}
	must(t, s.PutCredential(Cred("nd", "a.example", "u3", false, 3))) // non-discoverable: no limit
	must(t, s.PutCredential(Cred("a", "a.example", "u1", true, 1)))   // an update fits
	if r := s.RemainingDiscoverable(); r != 0 {
		t.Fatalf("RemainingDiscoverable %d when full, want 0", r)
	}
	if r := newStore(t, keystore.Unlimited).RemainingDiscoverable(); r < 1<<20 {
		t.Fatalf("RemainingDiscoverable %d without a limit", r)
	}
	if r := newStore(t, 0).RemainingDiscoverable(); r != keystore.DefaultMaxDiscoverable {
		t.Fatalf("RemainingDiscoverable %d by default, want %d", r, keystore.DefaultMaxDiscoverable)
	}
}

func testPutDiscoverable(t *testing.T, newStore Factory) {
	s := newStore(t, 2)
	must(t, s.PutCredential(Cred("old", "a.example", "alice", true, 1)))
	must(t, s.PutCredential(Cred("bob", "a.example", "bob", true, 2)))
	must1[uint32](t)(s.NextSignCount([]byte("old")))
	replaced, err := s.PutDiscoverable(Cred("new", "a.example", "alice", true, 3))
	must(t, err)
	if len(replaced) != 1 || string(replaced[0]) != "old" {
		t.Fatalf("replaced %q, want [old]", replaced)
	}
	if _, err := s.Credential([]byte("old")); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("replaced credential: %v", err)
	}
	got, _ := s.DiscoverableCredentials(rpHash("a.example"))
	if want := []string{"bob", "new"}; !reflect.DeepEqual(ids(got), want) {
		t.Fatalf("a.example: %q, want %q", ids(got), want)
	}
	// Another RP with the same user handle is not replaced.
	if _, err := s.PutDiscoverable(Cred("other", "b.example", "alice", true, 4)); !errors.Is(err, keystore.ErrFull) {
		t.Fatalf("new RP in a full store: %v", err)
	}
	replaced, err = s.PutDiscoverable(Cred("new", "a.example", "alice", true, 3)) // itself
	if err != nil || len(replaced) != 0 {
		t.Fatalf("storing the same credential again: %q, %v", replaced, err)
	}
}

func must1[T any](t *testing.T) func(T, error) {
	return func(_ T, err error) { t.Helper(); must(t, err) }
}

func testDelete(t *testing.T, newStore Factory) {
	s := newStore(t, 0)
	if err := s.DeleteCredential([]byte("nope")); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("delete unknown: %v", err)
	}
	must(t, s.PutCredential(Cred("d", "a.example", "u", true, 1)))
	must(t, s.PutCredential(Cred("nd", "a.example", "v", false, 2)))
	for range 5 {
		must1[uint32](t)(s.NextSignCount([]byte("nd")))
	}
	must(t, s.DeleteCredential([]byte("d")))
	if _, err := s.Credential([]byte("d")); !errors.Is(err, keystore.ErrNotFound) || errors.Is(err, keystore.ErrDeleted) {
		t.Fatalf("deleted discoverable: %v, want ErrNotFound", err)
	}
	if n, _ := s.DiscoverableCount(); n != 0 {
		t.Fatalf("DiscoverableCount %d after delete", n)
	}
	if d, _ := s.DiscoverableCredentials(rpHash("a.example")); len(d) != 0 {
		t.Fatal("deleted credential still indexed")
	}
	if err := s.DeleteCredential([]byte("d")); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	// A non-discoverable credential leaves a tombstone.
	must(t, s.DeleteCredential([]byte("nd")))
	if _, err := s.Credential([]byte("nd")); !errors.Is(err, keystore.ErrDeleted) || !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("deleted non-discoverable: %v, want ErrDeleted", err)
	}
	if _, err := s.NextSignCount([]byte("nd")); !errors.Is(err, keystore.ErrDeleted) {
		t.Fatalf("counter of a deleted credential: %v, want ErrDeleted", err)
	}
	// Restored (a backup import): its counter goes on above what it gave.
	must(t, s.PutCredential(Cred("nd", "a.example", "v", false, 2)))
	n, err := s.NextSignCount([]byte("nd"))
	must(t, err)
	if n <= 5 {
		t.Fatalf("restored credential's counter at %d, not above 5", n)
	}
}

func testCounters(t *testing.T, newStore Factory) {
	s := newStore(t, 0)
	// IDs not in the store share one global counter.
	var last uint32
	for i := range 10 {
		id := []byte(fmt.Sprintf("unstored-%d", i%3))
		n, err := s.NextSignCount(id)
		must(t, err)
		if n <= last {
			t.Fatalf("global counter went from %d to %d", last, n)
		}
		last = n
		if c, _ := s.SignCount(id); c != n {
			t.Fatalf("SignCount %d after NextSignCount %d", c, n)
		}
	}
	if err := s.SetSignCount([]byte("unstored-0"), 1); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("SetSignCount of an unstored ID: %v, want ErrNotFound", err)
	}
	// A stored credential has its own.
	must(t, s.PutCredential(Cred("c", "a.example", "u", true, 1)))
	if n, _ := s.SignCount([]byte("c")); n != 0 {
		t.Fatalf("new credential's SignCount %d", n)
	}
	for want := uint32(1); want <= 3; want++ {
		if n, err := s.NextSignCount([]byte("c")); err != nil || n != want {
			t.Fatalf("NextSignCount %d, %v; want %d", n, err, want)
		}
	}
	must(t, s.SetSignCount([]byte("c"), 1000))
	if n, _ := s.SignCount([]byte("c")); n != 1000 {
		t.Fatalf("SignCount %d after SetSignCount 1000", n)
	}
	if n, _ := s.NextSignCount([]byte("c")); n != 1001 {
		t.Fatalf("NextSignCount %d after SetSignCount 1000", n)
	}
	must(t, s.SetSignCount([]byte("c"), math.MaxUint32-1))
	if n, err := s.NextSignCount([]byte("c")); err != nil || n != math.MaxUint32 {
		t.Fatalf("NextSignCount %d, %v at the top", n, err)
	}
	if _, err := s.NextSignCount([]byte("c")); !errors.Is(err, keystore.ErrCounterExhausted) {
		t.Fatalf("past the top: %v, want ErrCounterExhausted", err)
	}
}

func testPINConfigLargeBlob(t *testing.T, newStore Factory) {
	s := newStore(t, 0)
	pin, err := s.PINState()
	must(t, err)
	if pin.Retries != keystore.DefaultPINRetries || pin.Hash != nil {
		t.Fatalf("new PIN state %+v", pin)
	}
	want := keystore.PINState{Hash: []byte("0123456789abcdef"), CodePoints: 4, Retries: 3, ForceChange: true, PersistentToken: bytes.Repeat([]byte{9}, 32)}
	must(t, s.SetPINState(want))
	if got, _ := s.PINState(); !reflect.DeepEqual(got, want) {
		t.Fatalf("PIN %+v, want %+v", got, want)
	}
	cfg, err := s.Config()
	must(t, err)
	if !reflect.DeepEqual(cfg, keystore.Config{}) {
		t.Fatalf("new config %+v", cfg)
	}
	wc := keystore.Config{AlwaysUV: true, MinPINLength: 6, MinPINLengthRPIDs: []string{"a.example"}}
	must(t, s.SetConfig(wc))
	if got, _ := s.Config(); !reflect.DeepEqual(got, wc) {
		t.Fatalf("config %+v, want %+v", got, wc)
	}
	if b, err := s.LargeBlobArray(); err != nil || b != nil {
		t.Fatalf("new large-blob array %q, %v; want nil", b, err)
	}
	must(t, s.SetLargeBlobArray([]byte("array")))
	if b, _ := s.LargeBlobArray(); string(b) != "array" {
		t.Fatalf("large-blob array %q", b)
	}
	must(t, s.SetLargeBlobArray([]byte{}))
	if b, _ := s.LargeBlobArray(); b == nil || len(b) != 0 {
		t.Fatalf("empty large-blob array read back as %v", b)
	}
}

func testReset(t *testing.T, newStore Factory) {
	s := newStore(t, 0)
	id := &keystore.Identity{WrapKey: bytes.Repeat([]byte{7}, 32), AttestationCACert: []byte("ca")}
	must(t, s.SetIdentity(id))
	must(t, s.PutCredential(Cred("a", "a.example", "u", true, 1)))
	must(t, s.PutCredential(Cred("nd", "a.example", "v", false, 2)))
	must(t, s.DeleteCredential([]byte("nd")))
	must1[uint32](t)(s.NextSignCount([]byte("unstored")))
	must(t, s.SetPINState(keystore.PINState{Hash: []byte("0123456789abcdef"), Retries: 2, PersistentToken: []byte("t")}))
	must(t, s.SetConfig(keystore.Config{AlwaysUV: true}))
	must(t, s.SetLargeBlobArray([]byte("x")))
	must(t, s.Reset())
	if all, _ := s.Credentials(); len(all) != 0 {
		t.Fatalf("%d credentials after Reset", len(all))
	}
	if _, err := s.Credential([]byte("nd")); !errors.Is(err, keystore.ErrNotFound) || errors.Is(err, keystore.ErrDeleted) {
		t.Fatalf("tombstone after Reset: %v", err)
	}
	if n, _ := s.DiscoverableCount(); n != 0 {
		t.Fatalf("DiscoverableCount %d after Reset", n)
	}
	if p, _ := s.PINState(); p.Hash != nil || p.Retries != keystore.DefaultPINRetries || p.PersistentToken != nil {
		t.Fatalf("PIN %+v after Reset", p)
	}
	if c, _ := s.Config(); c.AlwaysUV {
		t.Fatal("config kept after Reset")
	}
	if b, _ := s.LargeBlobArray(); b != nil {
		t.Fatal("large-blob array kept after Reset")
	}
	got, err := s.Identity()
	must(t, err)
	if bytes.Equal(got.WrapKey, id.WrapKey) || len(got.WrapKey) != 32 || string(got.AttestationCACert) != "ca" {
		t.Fatalf("identity after Reset: %+v", got)
	}
}

func testConcurrent(t *testing.T, newStore Factory) {
	s := newStore(t, keystore.Unlimited)
	const workers, each = 4, 40
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[string]map[uint32]bool{}
	record := func(id string, n uint32) {
		mu.Lock()
		defer mu.Unlock()
		if seen[id] == nil {
			seen[id] = map[uint32]bool{}
		}
		if seen[id][n] {
			t.Errorf("counter %s gave %d twice", id, n)
		}
		seen[id][n] = true
	}
	must(t, s.PutCredential(Cred("shared", "a.example", "s", true, 0)))
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				id := fmt.Sprintf("w%d-%d", w, i)
				c := Cred(id, "a.example", fmt.Sprintf("u%d", i%5), true, i)
				if _, err := s.PutDiscoverable(c); err != nil {
					t.Error(err)
					return
				}
				for _, cid := range []string{"shared", "unstored"} {
					n, err := s.NextSignCount([]byte(cid))
					if err != nil {
						t.Error(err)
						return
					}
					record(cid, n)
				}
				if _, err := s.DiscoverableCredentials(rpHash("a.example")); err != nil {
					t.Error(err)
				}
				if _, err := s.Credential([]byte(id)); err != nil && !errors.Is(err, keystore.ErrNotFound) {
					t.Error(err)
				}
				if i%3 == 0 {
					if err := s.DeleteCredential([]byte(id)); err != nil && !errors.Is(err, keystore.ErrNotFound) {
						t.Error(err)
					}
				}
				s.RemainingDiscoverable()
			}
		}()
	}
	wg.Wait()
	// One credential per (RP, user) remains for the replaced users, plus shared.
	got, err := s.DiscoverableCredentials(rpHash("a.example"))
	must(t, err)
	users := map[string]int{}
	for _, c := range got {
		users[string(c.UserID)]++
	}
	for u, n := range users {
		if n > 1 {
			t.Errorf("user %s has %d credentials after concurrent replacements", u, n)
		}
	}
	if n, _ := s.DiscoverableCount(); n != len(got) {
		t.Errorf("DiscoverableCount %d, but %d indexed", n, len(got))
	}
}
