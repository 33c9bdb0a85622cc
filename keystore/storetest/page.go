package storetest

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"github.com/vkey-dev/vkey/keystore"
)

// Walk reads every credential of s through CredentialsPage, limit at a
// time, calling between(page number, credentials listed so far) after
// each page that has a successor. It fails t on an error, on a page longer than limit, on a
// non-nil cursor after a short page and on a walk that does not end.
func Walk(t testing.TB, s keystore.Store, limit int, between func(page int, listed []*keystore.Credential)) []*keystore.Credential {
	t.Helper()
	var all []*keystore.Credential
	var after []byte
	for page := 0; ; page++ {
		if page > 1_000_000 {
			t.Fatal("CredentialsPage walk does not end")
		}
		cs, next, err := s.CredentialsPage(after, limit)
		if err != nil {
			t.Fatalf("CredentialsPage(page %d): %v", page, err)
		}
		if len(cs) > limit {
			t.Fatalf("CredentialsPage returned %d credentials, limit %d", len(cs), limit)
		}
		all = append(all, cs...)
		if next == nil {
			return all
		}
		if len(cs) < limit {
			t.Fatalf("CredentialsPage returned a short page (%d of %d) with a cursor", len(cs), limit)
		}
		if between != nil {
			between(page, all)
		}
		after = next
	}
}

func testCredentialsPage(t *testing.T, newStore Factory) {
	s := newStore(t, keystore.Unlimited)
	for _, limit := range []int{0, -1} {
		if _, _, err := s.CredentialsPage(nil, limit); err == nil {
			t.Fatalf("CredentialsPage with limit %d: no error", limit)
		}
	}
	if cs, next, err := s.CredentialsPage(nil, 10); err != nil || len(cs) != 0 || next != nil {
		t.Fatalf("CredentialsPage of a new store: %d credentials, cursor %x, %v", len(cs), next, err)
	}
	want := map[string]*keystore.Credential{}
	for i := range 24 {
		c := Cred(fmt.Sprintf("cred-%02d", i), fmt.Sprintf("rp%d.example", i%3), fmt.Sprintf("u%d", i), i%2 == 0, i)
		must(t, s.PutCredential(c))
		want[string(c.ID)] = c
	}
	// A tombstone (deleted non-discoverable credential) is not listed.
	must(t, s.DeleteCredential([]byte("cred-01")))
	delete(want, "cred-01")

	for _, limit := range []int{1, 5, 23, 24, 100} {
		got := Walk(t, s, limit, nil)
		seen := map[string]bool{}
		for _, c := range got {
			if seen[string(c.ID)] {
				t.Fatalf("limit %d: %q listed twice", limit, c.ID)
			}
			seen[string(c.ID)] = true
			if w := want[string(c.ID)]; !same(c, w) {
				t.Fatalf("limit %d: listed %+v, stored %+v", limit, c, w)
			}
		}
		if len(seen) != len(want) {
			t.Fatalf("limit %d: listed %d credentials, %d stored", limit, len(seen), len(want))
		}
	}
	// The last page ends the walk: 23 credentials in pages of 23 leave no
	// cursor (no empty page to ask for).
	if cs, next, err := s.CredentialsPage(nil, 23); err != nil || len(cs) != 23 || next != nil {
		t.Fatalf("one full page: %d credentials, cursor %x, %v", len(cs), next, err)
	}

	// Pages are copies.
	cs, _, err := s.CredentialsPage(nil, 1)
	must(t, err)
	id := string(cs[0].ID)
	cs[0].KeyBlob[0] ^= 0xff
	cs[0].UserName = "changed"
	if again := must2(s.Credential([]byte(id))); !same(again, want[id]) {
		t.Fatal("changing a page's credential changed the store")
	}

	// Deletes and adds between pages: none listed twice, none stored
	// throughout skipped, even when the cursor's own credential goes.
	var listed []*keystore.Credential
	gone := map[string]bool{}
	added := 0
	listed = Walk(t, s, 4, func(page int, sofar []*keystore.Credential) {
		if page > 3 {
			return
		}
		// The credential of the cursor (the last listed) and one not
		// listed yet.
		mine := string(sofar[len(sofar)-1].ID)
		ahead := ""
		for id := range want {
			if !gone[id] && !slices.ContainsFunc(sofar, func(c *keystore.Credential) bool { return string(c.ID) == id }) {
				ahead = id
				break
			}
		}
		for _, id := range []string{mine, ahead} {
			if id != "" {
				must(t, s.DeleteCredential([]byte(id)))
				gone[id] = true
			}
		}
		added++
		must(t, s.PutCredential(Cred(fmt.Sprintf("new-%d", page), "rp.example", "n", page%2 == 0, 100+page)))
	})
	seen := map[string]bool{}
	for _, c := range listed {
		if seen[string(c.ID)] {
			t.Fatalf("%q listed twice while the store changed", c.ID)
		}
		seen[string(c.ID)] = true
		if _, ok := want[string(c.ID)]; !ok && !bytes.HasPrefix(c.ID, []byte("new-")) {
			t.Fatalf("listed %q, never stored", c.ID)
		}
	}
	for id := range want {
		if !gone[id] && !seen[id] {
			t.Fatalf("%q, stored throughout, was skipped", id)
		}
	}
	if added == 0 || len(gone) == 0 {
		t.Fatal("the walk changed nothing: the test proves nothing")
	}

	// After a reset, an old cursor lists nothing and the store is empty.
	_, next, err := s.CredentialsPage(nil, 2)
	must(t, err)
	must(t, s.Reset())
	if cs, n, err := s.CredentialsPage(next, 2); err != nil || len(cs) != 0 || n != nil {
		t.Fatalf("CredentialsPage after reset with an old cursor: %d credentials, cursor %x, %v", len(cs), n, err)
	}
	if cs, n, err := s.CredentialsPage(nil, 2); err != nil || len(cs) != 0 || n != nil {
		t.Fatalf("CredentialsPage after reset: %d credentials, cursor %x, %v", len(cs), n, err)
	}
}

func testNonDiscoverable(t *testing.T, newStore Factory) {
	s := newStore(t, 0)
	list := func(rp string) []string {
		t.Helper()
		cs, err := s.NonDiscoverableCredentials(rpHash(rp))
		must(t, err)
		return ids(cs)
	}
	if _, err := s.NonDiscoverableCredentials([]byte("short")); err == nil {
		t.Fatal("NonDiscoverableCredentials of a short hash: no error")
	}
	if got := list("a.example"); len(got) != 0 {
		t.Fatalf("new store: %q", got)
	}
	must(t, s.PutCredential(Cred("n2", "a.example", "u2", false, 2)))
	must(t, s.PutCredential(Cred("n1", "a.example", "u1", false, 1)))
	must(t, s.PutCredential(Cred("d", "a.example", "u3", true, 3)))
	must(t, s.PutCredential(Cred("o", "b.example", "u4", false, 4)))
	if got := list("a.example"); !slices.Equal(got, []string{"n1", "n2"}) {
		t.Fatalf("NonDiscoverableCredentials %q, want oldest first [n1 n2]", got)
	}
	if got := list("b.example"); !slices.Equal(got, []string{"o"}) {
		t.Fatalf("other RP: %q", got)
	}
	// Becoming discoverable (and back) moves a credential between indices.
	must(t, s.PutCredential(Cred("n1", "a.example", "u1", true, 1)))
	if got := list("a.example"); !slices.Equal(got, []string{"n2"}) {
		t.Fatalf("after n1 became discoverable: %q", got)
	}
	must(t, s.PutCredential(Cred("d", "a.example", "u3", false, 3)))
	if got := list("a.example"); !slices.Equal(got, []string{"n2", "d"}) {
		t.Fatalf("after d stopped being discoverable: %q", got)
	}
	// Moving to another RP under the same ID re-indexes it.
	must(t, s.PutCredential(Cred("o", "c.example", "u4", false, 4)))
	if b, c := list("b.example"), list("c.example"); len(b) != 0 || !slices.Equal(c, []string{"o"}) {
		t.Fatalf("after o moved to c.example: b %q, c %q", b, c)
	}
	// A tombstone is not listed; a restore lists it again.
	must(t, s.DeleteCredential([]byte("n2")))
	if got := list("a.example"); !slices.Equal(got, []string{"d"}) {
		t.Fatalf("after deleting n2: %q", got)
	}
	must(t, s.PutCredential(Cred("n2", "a.example", "u2", false, 2)))
	if got := list("a.example"); !slices.Equal(got, []string{"n2", "d"}) {
		t.Fatalf("after restoring n2: %q", got)
	}
	// Copies, and a reset empties the index.
	cs, err := s.NonDiscoverableCredentials(rpHash("a.example"))
	must(t, err)
	cs[0].KeyBlob[0] ^= 0xff
	if again := must2(s.Credential([]byte("n2"))); !same(again, Cred("n2", "a.example", "u2", false, 2)) {
		t.Fatal("changing a listed credential changed the store")
	}
	must(t, s.Reset())
	if got := list("a.example"); len(got) != 0 {
		t.Fatalf("after reset: %q", got)
	}
}
