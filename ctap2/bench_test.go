package ctap2_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"testing"

	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/internal/benchpair"
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
	benchpair.Compare(b, 1, handleOp(k, "getAssertion", msg), benchpair.Op{Name: "ecdsa+sha256", Run: func() error {
		h := sha256.Sum256(toSign)
		_, err := ecdsa.SignASN1(rand.Reader, bare, h[:])
		return err
	}})
}

// handleOp is a CTAP2 command sent to k, failing unless it answers
// CTAP2_OK.
func handleOp(k *testKey, name string, msg []byte) benchpair.Op {
	return benchpair.Op{Name: name, Run: func() error {
		if out := k.a.HandleCBOR(context.Background(), msg); out[0] != 0 {
			return ctap2.Status(out[0])
		}
		return nil
	}}
}

// BenchmarkMakeCredential measures makeCredential (ES256, packed
// attestation) against a key generation plus two signatures (goal: ratio
// at most 1.5).
func BenchmarkMakeCredential(b *testing.B) {
	k := newKey(b, func(o *ctap2.Options) { o.Presence = ctap2.AutoPresence{} })
	msg := append([]byte{ctap2.CmdMakeCredential}, mustCBOR(b, mcRequest(b, "example.com", []byte{1}, false))...)
	toSign := make([]byte, 300)
	benchpair.Compare(b, 1, handleOp(k, "makeCredential", msg), benchpair.Op{Name: "keygen+2sign", Run: func() error {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		for range 2 {
			h := sha256.Sum256(toSign)
			if _, err := ecdsa.SignASN1(rand.Reader, key, h[:]); err != nil {
				return err
			}
		}
		return nil
	}})
}

// BenchmarkGetAssertionFileStore measures getAssertion (a discoverable
// credential, through its allowList) on the persistent, encrypted store
// against the in-memory store, interleaved in one run; the goal is a
// throughput ratio (file/memory) of at least 0.90.
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
	onFile, onMem := benchpair.Compare(b, 1, handleOp(fk, "file", fileMsg), handleOp(mem, "memory", memMsg))
	b.ReportMetric(float64(onMem)/float64(onFile), "throughput-ratio")
}
