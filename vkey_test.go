package vkey_test

import (
	"context"
	"testing"
	"time"

	"github.com/vkey-dev/vkey"
	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/ctap2/client"
)

// TestZeroOptions: the zero Options are an ephemeral in-memory key with
// automatic presence that in-process clients reach; cancelling the
// context stops it, and Dial then fails.
func TestZeroOptions(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	k, err := vkey.New(ctx, vkey.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if k.StateDir != "" || k.Address != "" || k.Name != vkey.DefaultName {
		t.Errorf("key %+v", k)
	}
	conn, err := k.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := client.New(conn)
	req := &ctap2.MakeCredentialRequest{ClientDataHash: make([]byte, 32), RP: &ctap2.RPEntity{ID: "example.com"},
		User: &ctap2.UserEntity{ID: []byte{1}, Name: "alice"}, PubKeyCredParams: []ctap2.CredentialParameter{{Type: "public-key", Alg: -7}}}
	if _, err := c.MakeCredential(ctx, req); err != nil {
		t.Fatalf("makeCredential with automatic presence: %v", err)
	}
	conn.Close()
	cancel()
	select {
	case <-k.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the key did not stop when its context was cancelled")
	}
	if err := k.Wait(); err != nil {
		t.Errorf("Wait: %v", err)
	}
	if _, err := k.Dial(context.Background()); err == nil {
		t.Error("Dial after stop succeeded")
	}
}
