package ctap2_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/internal/benchpair"
	"github.com/vkey-dev/vkey/keystore"
	"github.com/vkey-dev/vkey/keystore/storetest"
)

// Sizes of the states the store benchmarks compare (issue 14).
const (
	smallState = 100
	largeState = 100_000
)

// benchState opens a persistent store on disk holding n discoverable
// credentials of 1,000 other relying parties (see storetest.BuildState).
func benchState(b *testing.B, n int) *keystore.File {
	b.Helper()
	dir := b.TempDir()
	opts := keystore.FileOptions{MasterKey: make([]byte, 32), MaxDiscoverable: keystore.Unlimited}
	if err := storetest.BuildState(dir, opts, n); err != nil {
		b.Fatal(err)
	}
	f, err := keystore.OpenFile(dir, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	return f
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

// BenchmarkLargeState compares operations on the persistent store holding
// 100,000 credentials against the same holding 100 (issue 14). The states
// are built once, directly through the store; each sub-benchmark
// interleaves the two in one run:
//
//   - MakeCredential: a discoverable registration (goal: ratio at most 2),
//     with the bytes each writes per registration (goal: independent of
//     the number stored);
//   - DiscoverableGetAssertion: getAssertion without allowList for a
//     relying party with 5 credentials (goal: ratio at most 1.5).
func BenchmarkLargeState(b *testing.B) {
	auto := func(s keystore.Store) *testKey {
		return newKey(b, func(o *ctap2.Options) { o.Store = s; o.Presence = ctap2.AutoPresence{} })
	}
	small, large := auto(benchState(b, smallState)), auto(benchState(b, largeState))
	b.Run("MakeCredential", func(b *testing.B) {
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
	})
	assertOp := func(k *testKey, name string) benchpair.Op {
		for u := range 5 {
			if _, err := k.c.MakeCredential(context.Background(), mcRequest(b, "assert.example", []byte{byte(u)}, true)); err != nil {
				b.Fatal(err)
			}
		}
		msg := append([]byte{ctap2.CmdGetAssertion}, mustCBOR(b, &ctap2.GetAssertionRequest{RPID: "assert.example", ClientDataHash: make([]byte, 32)})...)
		return handleOp(k, name, msg)
	}
	smallAssert, largeAssert := assertOp(small, "100-stored"), assertOp(large, "100000-stored")
	b.Run("DiscoverableGetAssertion", func(b *testing.B) {
		benchpair.Compare(b, 1, largeAssert, smallAssert)
	})
}

// BenchmarkEnumerateRPs compares credential management's enumerateRPs
// (begin and every getNextRP, CTAP 2.1 section 6.8.3) on the persistent
// store holding 100,000 discoverable credentials against the same holding
// 100, both over 10 relying parties: its cost should follow the relying
// parties, not the credentials.
func BenchmarkEnumerateRPs(b *testing.B) {
	const rps = 10
	op := func(n int, name string) benchpair.Op {
		dir := b.TempDir()
		opts := keystore.FileOptions{MasterKey: make([]byte, 32), MaxDiscoverable: keystore.Unlimited}
		if err := storetest.BuildStateRPs(dir, opts, n, rps); err != nil {
			b.Fatal(err)
		}
		f, err := keystore.OpenFile(dir, opts)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { f.Close() })
		k := newKey(b, func(o *ctap2.Options) { o.Store = f })
		ctx := context.Background()
		if err := k.c.SetPIN(ctx, 2, "1234"); err != nil {
			b.Fatal(err)
		}
		tok, err := k.c.PINToken(ctx, 2, "1234", ctap2.PermCredentialMgmt, "")
		if err != nil {
			b.Fatal(err)
		}
		m := k.c.CredentialManagement(tok, false)
		return benchpair.Op{Name: name, Run: func() error {
			got, err := m.RPs(ctx)
			if err == nil && len(got) != rps {
				err = fmt.Errorf("%d relying parties, want %d", len(got), rps)
			}
			return err
		}}
	}
	benchpair.Compare(b, 1, op(largeState, "100000-stored"), op(smallState, "100-stored"))
}
