package ctap2_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/internal/benchpair"
	"github.com/vkey-dev/vkey/keystore"
)

// walkVirtual lists every credential (of rpID, if not empty) through
// VirtualCredentialsPage, limit at a time.
func walkVirtual(t testing.TB, a *ctap2.Authenticator, rpID string, limit int) []ctap2.VirtualCredential {
	t.Helper()
	var out []ctap2.VirtualCredential
	var cursor []byte
	for range 100_000 {
		page, next, err := a.VirtualCredentialsPage(rpID, cursor, limit)
		if err != nil {
			t.Fatalf("VirtualCredentialsPage(%q): %v", rpID, err)
		}
		if len(page) > limit {
			t.Fatalf("page of %d, limit %d", len(page), limit)
		}
		out = append(out, page...)
		if next == nil {
			return out
		}
		cursor = next
	}
	t.Fatal("the walk does not end")
	return nil
}

// pagedCred is a stored credential for the paging tests; its key is never
// used.
func pagedCred(i int, rpID string, discoverable bool) *keystore.Credential {
	return &keystore.Credential{
		ID: []byte(fmt.Sprintf("cred-%04d", i)), RPID: rpID, UserID: []byte(fmt.Sprintf("user-%d", i)),
		UserName: "u", Algorithm: keystore.AlgES256, Provider: keystore.SoftwareProviderName,
		KeyBlob: []byte("unused"), Discoverable: discoverable, BackupEligible: !discoverable,
		Created: time.Unix(int64(i), 0),
	}
}

// TestVirtualCredentialsPageEveryOnce: at 1,000 stored credentials, walks
// in small pages list each exactly once, with ?rpId= the relying party's
// discoverable and stored non-discoverable ones and nothing else; large
// blobs come with their credentials.
func TestVirtualCredentialsPageEveryOnce(t *testing.T) {
	store := keystore.NewMemory(keystore.Unlimited)
	k := newKey(t, func(o *ctap2.Options) { o.Store = store })
	want := map[string]string{} // ID -> RP ID
	for i := range 1000 {
		rp := fmt.Sprintf("rp%d.example", i%10)
		if err := store.PutCredential(pagedCred(i, rp, i%3 != 0)); err != nil {
			t.Fatal(err)
		}
		want[fmt.Sprintf("cred-%04d", i)] = rp
	}
	// Two with large blobs, made as the control API makes them.
	blobIDs := map[string][]byte{}
	for i, blob := range [][]byte{[]byte("first blob"), []byte("second blob")} {
		priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		der, _ := x509.MarshalPKCS8PrivateKey(priv)
		id, err := k.a.AddCredential(ctap2.VirtualCredential{RPID: "rp3.example", UserHandle: []byte{byte(i)}, Discoverable: true, PrivateKey: der, LargeBlob: blob})
		if err != nil {
			t.Fatal(err)
		}
		want[string(id)] = "rp3.example"
		blobIDs[string(id)] = blob
	}

	check := func(name string, got []ctap2.VirtualCredential, rp string) {
		t.Helper()
		seen := map[string]bool{}
		for _, v := range got {
			if seen[string(v.ID)] {
				t.Fatalf("%s: %q listed twice", name, v.ID)
			}
			seen[string(v.ID)] = true
			if w, ok := want[string(v.ID)]; !ok || w != v.RPID || (rp != "" && v.RPID != rp) {
				t.Fatalf("%s: listed %q of %q", name, v.ID, v.RPID)
			}
			if b, ok := blobIDs[string(v.ID)]; ok && !bytes.Equal(v.LargeBlob, b) {
				t.Fatalf("%s: large blob %q, want %q", name, v.LargeBlob, b)
			}
		}
		n := 0
		for _, r := range want {
			if rp == "" || r == rp {
				n++
			}
		}
		if len(seen) != n {
			t.Fatalf("%s: listed %d credentials, want %d", name, len(seen), n)
		}
	}
	for _, limit := range []int{1, 7, 100, ctap2.MaxVirtualPage} {
		check(fmt.Sprintf("all, limit %d", limit), walkVirtual(t, k.a, "", limit), "")
		check(fmt.Sprintf("rp3, limit %d", limit), walkVirtual(t, k.a, "rp3.example", limit), "rp3.example")
	}
	all, err := k.a.VirtualCredentials()
	if err != nil {
		t.Fatal(err)
	}
	check("VirtualCredentials", all, "")
	for i := 1; i < len(all); i++ {
		if bytes.Compare(all[i-1].ID, all[i].ID) > 0 && bytes.HasPrefix(all[i].ID, []byte("cred-")) && bytes.HasPrefix(all[i-1].ID, []byte("cred-")) {
			t.Fatalf("VirtualCredentials not oldest first: %q before %q", all[i-1].ID, all[i].ID)
		}
	}
	if got := walkVirtual(t, k.a, "none.example", 10); len(got) != 0 {
		t.Fatalf("unknown RP: %d credentials", len(got))
	}

	// A cursor of one kind is refused for the other, and limits are bounded.
	_, allNext, _ := k.a.VirtualCredentialsPage("", nil, 5)
	_, rpNext, _ := k.a.VirtualCredentialsPage("rp3.example", nil, 5)
	for _, tc := range []struct {
		rp     string
		cursor []byte
		limit  int
	}{{"rp3.example", allNext, 5}, {"", rpNext, 5}, {"", []byte("x"), 5}, {"", nil, 0}, {"", nil, ctap2.MaxVirtualPage + 1}} {
		if _, _, err := k.a.VirtualCredentialsPage(tc.rp, tc.cursor, tc.limit); !errors.Is(err, ctap2.ErrInvalidPage) {
			t.Fatalf("VirtualCredentialsPage(%q, %q, %d): %v, want ErrInvalidPage", tc.rp, tc.cursor, tc.limit, err)
		}
	}
}

// blockingListStore blocks the first listing read (CredentialsPage,
// Credentials, or an RP index read) made after arm until release.
type blockingListStore struct {
	keystore.Store
	storeGate
}

func (s *blockingListStore) CredentialsPage(after []byte, limit int) ([]*keystore.Credential, []byte, error) {
	s.pass()
	return s.Store.CredentialsPage(after, limit)
}

func (s *blockingListStore) Credentials() ([]*keystore.Credential, error) {
	s.pass()
	return s.Store.Credentials()
}

func (s *blockingListStore) DiscoverableCredentials(rpIDHash []byte) ([]*keystore.Credential, error) {
	s.pass()
	return s.Store.DiscoverableCredentials(rpIDHash)
}

func (s *blockingListStore) NonDiscoverableCredentials(rpIDHash []byte) ([]*keystore.Credential, error) {
	s.pass()
	return s.Store.NonDiscoverableCredentials(rpIDHash)
}

// TestVirtualCredentialsHoldNoLock: while a listing (or a removal of all
// credentials) is inside the store's page read, a getAssertion completes:
// it holds no lock a CTAP command needs (the defect: a list of a large
// store held the authenticator's lock for its whole run).
func TestVirtualCredentialsHoldNoLock(t *testing.T) {
	store := &blockingListStore{Store: keystore.NewMemory(keystore.Unlimited)}
	k := newKey(t, func(o *ctap2.Options) { o.Store = store })
	k.register(t, mcRequest(t, "example.com", []byte("alice"), true))
	for i := range 50 {
		if err := store.Store.PutCredential(pagedCred(i, "other.example", true)); err != nil {
			t.Fatal(err)
		}
	}
	// assertDuring runs list while the store blocks its first listing
	// read, and a getAssertion meanwhile: it must answer within seconds.
	assertDuring := func(name string, list func() error) {
		t.Helper()
		store.arm()
		listed := make(chan error, 1)
		go func() { listed <- list() }()
		select {
		case <-store.entered:
		case err := <-listed:
			t.Fatalf("%s: the listing did not read the store (%v)", name, err)
		}
		asserted := make(chan error, 1)
		go func() {
			_, err := k.c.GetAssertion(context.Background(), &ctap2.GetAssertionRequest{RPID: "example.com", ClientDataHash: make([]byte, 32)})
			asserted <- err
		}()
		select {
		case err := <-asserted:
			if err != nil {
				t.Fatalf("%s: getAssertion while the listing reads the store: %v", name, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: getAssertion blocked while the listing reads the store", name)
		}
		close(store.release)
		if err := <-listed; err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	for _, rp := range []string{"", "example.com"} {
		assertDuring(fmt.Sprintf("page of rpId %q", rp), func() error {
			_, _, err := k.a.VirtualCredentialsPage(rp, nil, 10)
			return err
		})
	}
	assertDuring("VirtualCredentials", func() error {
		_, err := k.a.VirtualCredentials()
		return err
	})
	// RemoveAllCredentials takes the lock only to delete a page it read.
	assertDuring("RemoveAllCredentials", func() error {
		n, err := k.a.RemoveAllCredentials()
		if err == nil && n != 51 {
			err = fmt.Errorf("removed %d credentials, want 51", n)
		}
		return err
	})
	if left, err := store.Credentials(); err != nil || len(left) != 0 {
		t.Fatalf("after RemoveAllCredentials: %d credentials left, %v", len(left), err)
	}
}

// BenchmarkListRPCredentials compares listing one relying party's 6
// credentials (5 discoverable, 1 stored non-discoverable) through
// VirtualCredentialsPage, as GET /credentials?rpId= does, on the
// persistent store holding 100,000 other credentials against the same
// holding 100: through the relying-party indices its cost should follow
// the relying party's credentials, not the store (ratio near 1).
func BenchmarkListRPCredentials(b *testing.B) {
	op := func(n int, name string) benchpair.Op {
		f := benchState(b, n)
		for i := range 6 {
			c := pagedCred(i, "list.example", i < 5)
			c.Created = time.Now()
			if err := f.PutCredential(c); err != nil {
				b.Fatal(err)
			}
		}
		k := newKey(b, func(o *ctap2.Options) { o.Store = f })
		return benchpair.Op{Name: name, Run: func() error {
			page, next, err := k.a.VirtualCredentialsPage("list.example", nil, ctap2.DefaultVirtualPage)
			if err == nil && (len(page) != 6 || next != nil) {
				err = fmt.Errorf("%d credentials (cursor %x), want 6", len(page), next)
			}
			return err
		}}
	}
	benchpair.Compare(b, 1, op(largeState, "100000-stored"), op(smallState, "100-stored"))
}
