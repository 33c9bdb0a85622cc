package storetest

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/vkey-dev/vkey/keystore"
	bolt "go.etcd.io/bbolt"
)

// BuildState adds n discoverable credentials, spread over 1,000 relying
// parties rpN.example, to the persistent store in dir (opened with opts),
// directly through the store and in large transactions, and leaves it
// closed and compacted, as a state grown one registration at a time would
// be. Their keys are random bytes, never to be used: it is for tests and
// benchmarks that need a large state fast.
func BuildState(dir string, opts keystore.FileOptions, n int) error {
	return BuildStateRPs(dir, opts, n, 1000)
}

// BuildStateRPs is BuildState with the credentials spread over rps relying
// parties rpN.example (N from 0 to rps-1).
func BuildStateRPs(dir string, opts keystore.FileOptions, n, rps int) error {
	if rps < 1 {
		return fmt.Errorf("storetest: %d relying parties", rps)
	}
	f, err := keystore.OpenFile(dir, opts)
	if err != nil {
		return err
	}
	now := time.Now()
	const chunk = 20_000
	batch := make([]*keystore.Credential, 0, chunk)
	for i := 0; i < n; i++ {
		c := &keystore.Credential{
			ID: make([]byte, 112), RPID: fmt.Sprintf("rp%d.example", i%rps), RPName: "Filler",
			UserID: []byte(strconv.Itoa(i)), UserName: "user" + strconv.Itoa(i), UserDisplayName: "User",
			Algorithm: keystore.AlgES256, Provider: keystore.SoftwareProviderName, KeyBlob: make([]byte, 121),
			Discoverable: true, Created: now, PublicKey: make([]byte, 77),
		}
		_, _ = rand.Read(c.ID)
		_, _ = rand.Read(c.KeyBlob)
		batch = append(batch, c)
		if len(batch) == chunk || i == n-1 {
			if err := f.PutCredentials(batch); err != nil {
				f.Close()
				return err
			}
			batch = batch[:0]
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	return compact(filepath.Join(dir, keystore.StateFileName))
}

// compact rewrites a bbolt file without the free pages a bulk load left.
func compact(path string) error {
	tmp := path + ".compact"
	src, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := bolt.Open(tmp, 0o600, nil)
	if err != nil {
		return err
	}
	if err := bolt.Compact(dst, src, 64<<20); err != nil {
		dst.Close()
		return err
	}
	if err := dst.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
