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
	k := cmKey(t, func(o *ctap2.Options) { o.Store = scanCountingStore{keystore.NewMemory(0), &scans} })
	ctx := context.Background()
	rp := func(id string) client.RP {
		h := sha256.Sum256([]byte(id))
		return client.RP{ID: id, Name: id, IDHash: h[:]} // mcRequest names the RP by its ID
	}
	for _, want := range [][]client.RP{{rp("example.com"), rp("other.example")}, {rp("example.com")}} {
		before := scans.Load()
		m := k.cm(t, "")
		rps, err := m.RPs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(rps, want) {
			t.Errorf("RPs %+v, want %+v", rps, want)
		}
		if n := scans.Load() - before; n != 0 {
			t.Errorf("enumerateRPs read every credential %d times", n)
		}
		// Delete other.example's only credential: its RP goes.
		if creds, err := m.Credentials(ctx, rp("other.example")); err != nil {
			t.Fatal(err)
		} else if len(creds) == 1 {
			if err := m.Delete(ctx, creds[0].ID); err != nil {
				t.Fatal(err)
			}
		}
	}
}
