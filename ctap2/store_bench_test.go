package ctap2_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/internal/benchpair"
	"github.com/vkey-dev/vkey/keystore"
	bolt "go.etcd.io/bbolt"
)

// Sizes of the states the store benchmarks compare (issue 14).
const (
	smallState = 100
	largeState = 100_000
)

// benchStates caches, per size, a state built once per test process and
// copied for each benchmark run (Go runs a benchmark several times while
// it sizes b.N); TestMain removes the folder.
var benchStates struct {
	sync.Mutex
	dir   string
	paths map[int]string
}

// benchState opens a persistent store on disk holding n discoverable
// credentials of 1,000 other relying parties, written directly through the
// store (their keys are never used, so they are random bytes).
func benchState(b *testing.B, n int) *keystore.File {
	b.Helper()
	key := make([]byte, 32)
	opts := keystore.FileOptions{MasterKey: key, MaxDiscoverable: keystore.Unlimited}
	template, err := benchTemplate(n, opts)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	data, err := os.ReadFile(template)
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, keystore.StateFileName), data, 0o600)
	}
	if err != nil {
		b.Fatal(err)
	}
	f, err := keystore.OpenFile(dir, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	return f
}

// benchTemplate returns the state file of a store holding n credentials,
// building it on first use.
func benchTemplate(n int, opts keystore.FileOptions) (string, error) {
	benchStates.Lock()
	defer benchStates.Unlock()
	if p, ok := benchStates.paths[n]; ok {
		return p, nil
	}
	if benchStates.dir == "" {
		d, err := os.MkdirTemp("", "vkey-bench-states")
		if err != nil {
			return "", err
		}
		benchStates.dir, benchStates.paths = d, map[int]string{}
	}
	dir := filepath.Join(benchStates.dir, strconv.Itoa(n))
	f, err := keystore.OpenFile(dir, opts)
	if err != nil {
		return "", err
	}
	defer f.Close()
	now := time.Now()
	const chunk = 20_000
	batch := make([]*keystore.Credential, 0, chunk)
	for i := 0; i < n; i++ {
		c := &keystore.Credential{
			ID: make([]byte, 112), RPID: fmt.Sprintf("rp%d.example", i%1000), RPName: "Filler",
			UserID: []byte(strconv.Itoa(i)), UserName: "user" + strconv.Itoa(i), UserDisplayName: "User",
			Algorithm: keystore.AlgES256, Provider: keystore.SoftwareProviderName, KeyBlob: make([]byte, 121),
			Discoverable: true, Created: now, PublicKey: make([]byte, 77),
		}
		rand.Read(c.ID)
		rand.Read(c.KeyBlob)
		batch = append(batch, c)
		if len(batch) == chunk || i == n-1 {
			if err := f.PutCredentials(batch); err != nil {
				return "", err
			}
			batch = batch[:0]
		}
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	// Compacted, as a state grown one registration at a time is: the bulk
	// load left many free pages, which bbolt lists on every commit.
	p := filepath.Join(dir, "compact.db")
	src, err := bolt.Open(filepath.Join(dir, keystore.StateFileName), 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		return "", err
	}
	defer src.Close()
	dst, err := bolt.Open(p, 0o600, nil)
	if err != nil {
		return "", err
	}
	defer dst.Close()
	if err := bolt.Compact(dst, src, 64<<20); err != nil {
		return "", err
	}
	benchStates.paths[n] = p
	return p, nil
}

// TestMain removes the benchmark states.
func TestMain(m *testing.M) {
	code := m.Run()
	if benchStates.dir != "" {
		os.RemoveAll(benchStates.dir)
	}
	os.Exit(code)
}

// writtenBytes is what this process has written so far (wchar of
// /proc/self/io: every byte handed to write and pwrite).
func writtenBytes(b *testing.B) int64 {
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		b.Skip("no /proc/self/io")
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "wchar: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	b.Skip("no wchar in /proc/self/io")
	return 0
}

// makeCredentialOp registers a new discoverable credential (a new user of
// bench.example) on k each time.
func makeCredentialOp(b *testing.B, k *testKey, name string) benchpair.Op {
	n := 0
	return benchpair.Op{Name: name, Run: func() error {
		n++
		msg := append([]byte{ctap2.CmdMakeCredential}, mustCBOR(b, mcRequest(b, "bench.example", []byte("user-"+strconv.Itoa(n)), true))...)
		if out := k.a.HandleCBOR(context.Background(), msg); out[0] != 0 {
			return ctap2.Status(out[0])
		}
		return nil
	}}
}

// BenchmarkMakeCredentialLargeState measures a discoverable makeCredential
// on the persistent store holding 100,000 credentials against the same
// holding 100, interleaved in one run (goal: ratio at most 2), and reports
// the bytes each writes per registration (goal: independent of the number
// stored).
func BenchmarkMakeCredentialLargeState(b *testing.B) {
	auto := func(s keystore.Store) *testKey {
		return newKey(b, func(o *ctap2.Options) { o.Store = s; o.Presence = ctap2.AutoPresence{} })
	}
	small, large := auto(benchState(b, smallState)), auto(benchState(b, largeState))
	smallOp, largeOp := makeCredentialOp(b, small, "100-stored"), makeCredentialOp(b, large, "100000-stored")
	benchpair.Compare(b, 1, largeOp, smallOp)
	for _, op := range []benchpair.Op{smallOp, largeOp} {
		const n = 50
		before := writtenBytes(b)
		for range n {
			if err := op.Run(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(writtenBytes(b)-before)/n, "B-written-"+op.Name+"/op")
	}
}

// BenchmarkDiscoverableGetAssertionLargeState measures a discoverable
// getAssertion (no allowList) for a relying party with 5 credentials, on
// the persistent store holding 100,000 credentials in all against the same
// holding 100, interleaved in one run (goal: ratio at most 1.5).
func BenchmarkDiscoverableGetAssertionLargeState(b *testing.B) {
	setup := func(s keystore.Store, name string) benchpair.Op {
		k := newKey(b, func(o *ctap2.Options) { o.Store = s; o.Presence = ctap2.AutoPresence{} })
		for u := range 5 {
			if _, err := k.c.MakeCredential(context.Background(), mcRequest(b, "bench.example", []byte{byte(u)}, true)); err != nil {
				b.Fatal(err)
			}
		}
		msg := append([]byte{ctap2.CmdGetAssertion}, mustCBOR(b, &ctap2.GetAssertionRequest{RPID: "bench.example", ClientDataHash: make([]byte, 32)})...)
		return handleOp(k, name, msg)
	}
	small := setup(benchState(b, smallState), "100-stored")
	large := setup(benchState(b, largeState), "100000-stored")
	benchpair.Compare(b, 1, large, small)
}
