package ctap2_test

import (
	"context"
	"testing"

	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/keystore"
)

// TestStateOverLimit: a state holding more discoverable credentials than
// its limit (the limit was lowered) reports 0 remaining in getInfo and
// credential management (never a wrapped count), refuses new discoverable
// credentials only, and still lets a user's credential be replaced.
func TestStateOverLimit(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	key := make([]byte, 32)
	open := func(limit int) keystore.Store {
		s, err := keystore.OpenFile(dir, keystore.FileOptions{MasterKey: key, MaxDiscoverable: limit})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open(keystore.Unlimited)
	k := newKey(t, func(o *ctap2.Options) { o.Store = s })
	wantStatus(t, k.c.SetPIN(ctx, 2, "1234"), ctap2.StatusOK)
	mc := func(k *testKey, user byte, rk bool) error {
		tok, err := k.c.PINToken(ctx, 2, "1234", ctap2.PermMakeCredential, "example.com")
		if err != nil {
			t.Fatal(err)
		}
		req := mcRequest(t, "example.com", []byte{user}, rk)
		req.PinUvAuthParam, req.PinUvAuthProtocol = tok.Param(req.ClientDataHash), tok.Version()
		_, err = k.c.MakeCredential(ctx, req)
		return err
	}
	for u := byte(1); u <= 3; u++ {
		wantStatus(t, mc(k, u, true), ctap2.StatusOK)
	}
	s.Close()

	s = open(2)
	defer s.Close()
	k = newKey(t, func(o *ctap2.Options) { o.Store = s })
	info, err := k.c.GetInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r := info.RemainingDiscoverableCredentials; r == nil || *r != 0 {
		t.Fatalf("getInfo remainingDiscoverableCredentials %v, want 0", r)
	}
	existing, remaining, err := k.cm(t, "").Metadata(ctx)
	if err != nil || existing != 3 || remaining != 0 {
		t.Fatalf("credMgmt metadata: %d existing, %d remaining, %v; want 3, 0", existing, remaining, err)
	}
	wantStatus(t, mc(k, 9, true), ctap2.ErrKeyStoreFull)
	wantStatus(t, mc(k, 9, false), ctap2.StatusOK)
	wantStatus(t, mc(k, 2, true), ctap2.StatusOK) // replaces user 2's
	if n, _ := s.DiscoverableCount(); n != 3 {
		t.Fatalf("%d discoverable after a replacement, want 3", n)
	}
}

// TestDeletedSyncableRefused: deleting a syncable non-discoverable
// credential (which the store keeps, for backups) makes its ID refuse,
// although the ID itself still carries its key (issue 11 point 6).
func TestDeletedSyncableRefused(t *testing.T) {
	ctx := context.Background()
	for _, s := range []struct {
		name  string
		store func() keystore.Store
	}{
		{"memory", func() keystore.Store { return keystore.NewMemory(0) }},
		{"file", func() keystore.Store {
			f, err := keystore.OpenFile(t.TempDir(), keystore.FileOptions{MasterKey: make([]byte, 32)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.Close() })
			return f
		}},
	} {
		t.Run(s.name, func(t *testing.T) {
			store := s.store()
			k := newKey(t, func(o *ctap2.Options) { o.Store = store; o.Passkeys = ctap2.Syncable })
			att, err := k.c.MakeCredential(ctx, mcRequest(t, "example.com", []byte{1}, false))
			if err != nil {
				t.Fatal(err)
			}
			id, _ := att.CredentialID()
			req := &ctap2.GetAssertionRequest{RPID: "example.com", ClientDataHash: make([]byte, 32),
				AllowList: []ctap2.CredentialDescriptor{{Type: "public-key", ID: id}}}
			if _, err := k.c.GetAssertion(ctx, req); err != nil {
				t.Fatalf("before delete: %v", err)
			}
			if err := store.DeleteCredential(id); err != nil {
				t.Fatal(err)
			}
			_, err = k.c.GetAssertion(ctx, req)
			wantStatus(t, err, ctap2.ErrNoCredentials)
			if _, err := store.NextSignCount(id); err == nil {
				t.Fatal("a deleted credential's counter still counts")
			}
		})
	}
}
