package keystore_test

import (
	"testing"

	"github.com/vkey-dev/vkey/keystore"
	"github.com/vkey-dev/vkey/keystore/storetest"
)

func TestMemoryConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, max int) keystore.Store { return keystore.NewMemory(max) })
}

func TestFileConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, max int) keystore.Store {
		f, err := keystore.OpenFile(t.TempDir(), keystore.FileOptions{MasterKey: make([]byte, 32), MaxDiscoverable: max, ReserveBlock: 4})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	})
}
