package ctap2_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/keystore"
)

// BenchmarkGetAssertion measures one in-process getAssertion (ES256,
// non-discoverable, auto presence) against a bare ecdsa.Sign plus SHA-256
// over the same bytes, interleaved in one run, and reports their ratio
// (goal: at most 1.25).
func BenchmarkGetAssertion(b *testing.B) {
	k := newKey(b, func(o *ctap2.Options) { o.Presence = ctap2.AutoPresence{} })
	ctx := context.Background()
	att, err := k.c.MakeCredential(ctx, mcRequest(b, "example.com", []byte{1}, false))
	if err != nil {
		b.Fatal(err)
	}
	id, _ := att.CredentialID()
	msg := append([]byte{ctap2.CmdGetAssertion}, mustCBOR(b, &ctap2.GetAssertionRequest{
		RPID: "example.com", ClientDataHash: make([]byte, 32),
		AllowList: []ctap2.CredentialDescriptor{{Type: "public-key", ID: id}},
	})...)
	bare, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	toSign := make([]byte, 37+32)
	var protocol, crypto time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if out := k.a.HandleCBOR(ctx, msg); out[0] != 0 {
			b.Fatalf("getAssertion: %v", ctap2.Status(out[0]))
		}
		t1 := time.Now()
		h := sha256.Sum256(toSign)
		if _, err := ecdsa.SignASN1(rand.Reader, bare, h[:]); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		protocol += t1.Sub(t0)
		crypto += t2.Sub(t1)
	}
	reportRatio(b, "getAssertion", protocol, "ecdsa+sha256", crypto)
}

// BenchmarkMakeCredential measures makeCredential (ES256, packed
// attestation) against a key generation plus two signatures (goal: ratio
// at most 1.5).
func BenchmarkMakeCredential(b *testing.B) {
	k := newKey(b, func(o *ctap2.Options) { o.Presence = ctap2.AutoPresence{} })
	ctx := context.Background()
	msg := append([]byte{ctap2.CmdMakeCredential}, mustCBOR(b, mcRequest(b, "example.com", []byte{1}, false))...)
	toSign := make([]byte, 300)
	var protocol, crypto time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if out := k.a.HandleCBOR(ctx, msg); out[0] != 0 {
			b.Fatalf("makeCredential: %v", ctap2.Status(out[0]))
		}
		t1 := time.Now()
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		for j := 0; j < 2; j++ {
			h := sha256.Sum256(toSign)
			if _, err := ecdsa.SignASN1(rand.Reader, key, h[:]); err != nil {
				b.Fatal(err)
			}
		}
		t2 := time.Now()
		protocol += t1.Sub(t0)
		crypto += t2.Sub(t1)
	}
	reportRatio(b, "makeCredential", protocol, "keygen+2sign", crypto)
}

func reportRatio(b *testing.B, name string, measured time.Duration, baseName string, base time.Duration) {
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(measured.Nanoseconds())/n, name+"-ns/op")
	b.ReportMetric(float64(base.Nanoseconds())/n, baseName+"-ns/op")
	if base > 0 {
		b.ReportMetric(float64(measured)/float64(base), "ratio")
	}
}

// BenchmarkGetAssertionFileStore measures getAssertion (a discoverable
// credential, through its allowList) on the persistent, encrypted file
// store against the in-memory store, interleaved in one run; the goal is a
// throughput ratio (file/memory) of at least 0.80.
func BenchmarkGetAssertionFileStore(b *testing.B) {
	file, err := keystore.OpenFile(b.TempDir(), keystore.FileOptions{MasterKey: make([]byte, 32)})
	if err != nil {
		b.Fatal(err)
	}
	defer file.Close()
	ctx := context.Background()
	setup := func(store keystore.Store) (*testKey, []byte) {
		k := newKey(b, func(o *ctap2.Options) { o.Store = store; o.Presence = ctap2.AutoPresence{} })
		att, err := k.c.MakeCredential(ctx, mcRequest(b, "example.com", []byte{1}, true))
		if err != nil {
			b.Fatal(err)
		}
		id, _ := att.CredentialID()
		return k, append([]byte{ctap2.CmdGetAssertion}, mustCBOR(b, &ctap2.GetAssertionRequest{
			RPID: "example.com", ClientDataHash: make([]byte, 32),
			AllowList: []ctap2.CredentialDescriptor{{Type: "public-key", ID: id}},
		})...)
	}
	mem, memMsg := setup(keystore.NewMemory(0))
	fk, fileMsg := setup(file)
	var onMem, onFile time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if out := mem.a.HandleCBOR(ctx, memMsg); out[0] != 0 {
			b.Fatalf("memory: %v", ctap2.Status(out[0]))
		}
		t1 := time.Now()
		if out := fk.a.HandleCBOR(ctx, fileMsg); out[0] != 0 {
			b.Fatalf("file: %v", ctap2.Status(out[0]))
		}
		t2 := time.Now()
		onMem += t1.Sub(t0)
		onFile += t2.Sub(t1)
	}
	b.StopTimer()
	b.ReportMetric(float64(onMem.Nanoseconds())/float64(b.N), "memory-ns/op")
	b.ReportMetric(float64(onFile.Nanoseconds())/float64(b.N), "file-ns/op")
	b.ReportMetric(float64(onMem)/float64(onFile), "throughput-ratio")
}
