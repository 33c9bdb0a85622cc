package keystore

import (
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func upgradeCred(id, rp string, discoverable bool, n int) *Credential {
	return &Credential{ID: []byte(id), RPID: rp, UserID: []byte(id), Algorithm: AlgES256,
		Provider: SoftwareProviderName, KeyBlob: []byte("k"), Discoverable: discoverable,
		Created: time.Unix(int64(n), 0)}
}

func ndIDs(t *testing.T, f *File, rp string) []string {
	t.Helper()
	h := sha256.Sum256([]byte(rp))
	cs, err := f.NonDiscoverableCredentials(h[:])
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range cs {
		out = append(out, string(c.ID))
	}
	return out
}

// TestFileUpgradeIndexesNonDiscoverable: a format-2 store (without the
// index of stored non-discoverable credentials) is upgraded when opened,
// the index built from its credentials; PutCredentials indexes too.
func TestFileUpgradeIndexesNonDiscoverable(t *testing.T) {
	dir := t.TempDir()
	key := testKey(t)
	f, err := OpenFile(dir, FileOptions{MasterKey: key})
	if err != nil {
		t.Fatal(err)
	}
	err = f.PutCredentials([]*Credential{
		upgradeCred("n1", "a.example", false, 1), upgradeCred("d1", "a.example", true, 2),
		upgradeCred("n2", "a.example", false, 3), upgradeCred("n3", "b.example", false, 4),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := ndIDs(t, f, "a.example"); !slices.Equal(got, []string{"n1", "n2"}) {
		t.Fatalf("after PutCredentials: %q", got)
	}
	// Make it the format-2 store an older vkey wrote.
	err = f.update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketNDRP); err != nil {
			return err
		}
		return f.put(tx, bucketMeta, metaFormat, binary.BigEndian.AppendUint16(nil, 2))
	})
	if err != nil {
		t.Fatal(err)
	}
	f.Close()

	f, err = OpenFile(dir, FileOptions{MasterKey: key})
	if err != nil {
		t.Fatalf("opening a format-2 store: %v", err)
	}
	defer f.Close()
	if got := ndIDs(t, f, "a.example"); !slices.Equal(got, []string{"n1", "n2"}) {
		t.Fatalf("after the upgrade: %q", got)
	}
	if got := ndIDs(t, f, "b.example"); !slices.Equal(got, []string{"n3"}) {
		t.Fatalf("after the upgrade, b.example: %q", got)
	}
	err = f.view(func(tx *bolt.Tx) error {
		b, err := f.get(tx, bucketMeta, metaFormat)
		if err == nil && binary.BigEndian.Uint16(b) != storeFormat {
			t.Errorf("format %d after the upgrade, want %d", binary.BigEndian.Uint16(b), storeFormat)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
