package ctap2_test

import (
	"context"
	"crypto/sha256"
	"reflect"
	"sync/atomic"
	"testing"

	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/ctap2/client"
	"github.com/vkey-dev/vkey/keystore"
)

// scanCountingStore counts the calls of Credentials, the one Store
// operation whose cost grows with the store.
type scanCountingStore struct {
	keystore.Store
	scans *atomic.Int32
}

func (s scanCountingStore) Credentials() ([]*keystore.Credential, error) {
	s.scans.Add(1)
	return s.Store.Credentials()
}

// TestCredMgmtEnumerateRPsNoScan: enumerateRPs (CTAP 2.1 section 6.8.3)
// lists each relying party with discoverable credentials once, in RP ID
// order with its name, and no other (non-discoverable, deleted), from the
// store's summaries: without reading every stored credential.
func TestCredMgmtEnumerateRPsNoScan(t *testing.T) {
	var scans atomic.Int32
	k := newKey(t, func(o *ctap2.Options) { o.Store = scanCountingStore{keystore.NewMemory(0), &scans} })
	ctx := context.Background()
	wantStatus(t, k.c.SetPIN(ctx, 2, "1234"), ctap2.StatusOK)
	for _, c := range []struct {
		rp   string
		user byte
		rk   bool
	}{{"b.example", 1, true}, {"a.example", 2, true}, {"b.example", 3, true}, {"c.example", 4, false}, {"d.example", 5, true}} {
		tok, err := k.c.PINToken(ctx, 2, "1234", ctap2.PermMakeCredential, c.rp)
		if err != nil {
			t.Fatal(err)
		}
		req := mcRequest(t, c.rp, []byte{c.user}, c.rk)
		req.RP.Name = "Name of " + c.rp
		req.PinUvAuthParam, req.PinUvAuthProtocol = tok.Param(req.ClientDataHash), tok.Version()
		if _, err := k.c.MakeCredential(ctx, req); err != nil {
			t.Fatalf("makeCredential %s/%d: %v", c.rp, c.user, err)
		}
	}
	m := k.cm(t, "")
	creds, err := m.Credentials(ctx, client.RPByID("d.example"))
	if err != nil || len(creds) != 1 {
		t.Fatalf("d.example: %d credentials, %v", len(creds), err)
	}
	if err := m.Delete(ctx, creds[0].ID); err != nil {
		t.Fatal(err)
	}
	before := scans.Load()
	rps, err := k.cm(t, "").RPs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var want []client.RP
	for _, id := range []string{"a.example", "b.example"} {
		h := sha256.Sum256([]byte(id))
		want = append(want, client.RP{ID: id, Name: "Name of " + id, IDHash: h[:]})
	}
	if !reflect.DeepEqual(rps, want) {
		t.Errorf("RPs %+v, want %+v", rps, want)
	}
	if n := scans.Load() - before; n != 0 {
		t.Errorf("enumerateRPs read every credential %d times", n)
	}
}
