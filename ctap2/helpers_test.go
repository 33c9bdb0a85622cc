package ctap2_test

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/ctap2/client"
	"github.com/vkey-dev/vkey/keystore"
)

// fakeClock is a settable clock for the reset window and token expiry.
type fakeClock struct{ now atomic.Int64 }

func newClock() *fakeClock {
	c := &fakeClock{}
	c.now.Store(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.now.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.now.Add(int64(d)) }

// countingPresence approves and counts the requests.
type countingPresence struct {
	n      atomic.Int32
	answer error
}

func (p *countingPresence) Request(ctx context.Context, _ ctap2.PresenceRequest) error {
	p.n.Add(1)
	if err := ctx.Err(); err != nil {
		return err
	}
	return p.answer
}

type testKey struct {
	a     *ctap2.Authenticator
	c     *client.Client
	clock *fakeClock
	up    *countingPresence
	store keystore.Store
}

func newKey(t testing.TB, mutate ...func(*ctap2.Options)) *testKey {
	t.Helper()
	k := &testKey{clock: newClock(), up: &countingPresence{}, store: keystore.NewMemory(0)}
	opts := ctap2.Options{Store: k.store, Presence: k.up, Now: k.clock.Now}
	for _, m := range mutate {
		m(&opts)
	}
	a, err := ctap2.New(opts)
	if err != nil {
		t.Fatalf("ctap2.New: %v", err)
	}
	k.a, k.c = a, client.New(client.Direct{A: a})
	return k
}

// register makes a credential with req and returns its ID.
func (k *testKey) register(t testing.TB, req *ctap2.MakeCredentialRequest) []byte {
	t.Helper()
	att, err := k.c.MakeCredential(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	id, err := att.CredentialID()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// raw sends a command with raw CBOR parameters and returns the status.
func (k *testKey) raw(cmd byte, params []byte) (ctap2.Status, []byte) {
	out := k.a.HandleCBOR(context.Background(), append([]byte{cmd}, params...))
	return ctap2.Status(out[0]), out[1:]
}

func mustCBOR(t testing.TB, v any) []byte {
	t.Helper()
	b, err := ctap2.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func credParams(_ testing.TB, algs ...int64) []ctap2.CredentialParameter {
	var out []ctap2.CredentialParameter
	for _, alg := range algs {
		out = append(out, ctap2.CredentialParameter{Type: "public-key", Alg: alg})
	}
	return out
}

func mcRequest(t testing.TB, rpID string, userID []byte, rk bool, algs ...int64) *ctap2.MakeCredentialRequest {
	if len(algs) == 0 {
		algs = []int64{-7}
	}
	req := &ctap2.MakeCredentialRequest{
		ClientDataHash:   make([]byte, 32),
		RP:               &ctap2.RPEntity{ID: rpID, Name: rpID},
		User:             &ctap2.UserEntity{ID: userID, Name: "alice", DisplayName: "Alice"},
		PubKeyCredParams: credParams(t, algs...),
	}
	if rk {
		req.Options = map[string]bool{"rk": true}
	}
	return req
}

// wantStatus checks that err is the CTAP status want.
func wantStatus(t testing.TB, err error, want ctap2.Status) {
	t.Helper()
	var st ctap2.Status
	if want == ctap2.StatusOK {
		if err != nil {
			t.Fatalf("got error %v, want success", err)
		}
		return
	}
	if !errors.As(err, &st) || st != want {
		t.Fatalf("got %v, want %v", err, want)
	}
}

func smallStore() keystore.Store { return keystore.NewMemory(2) }

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
