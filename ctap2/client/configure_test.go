package client_test

import (
	"context"
	"errors"
	"testing"

	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/ctap2/client"
	"github.com/vkey-dev/vkey/keystore"
)

// TestSessionConfigure: the authenticatorConfig helpers check getInfo for
// the setting (UnsupportedError), leave alwaysUv alone when it is already
// as asked, and ask for the PIN only once one is set.
func TestSessionConfigure(t *testing.T) {
	ctx := context.Background()
	a, err := ctap2.New(ctap2.Options{Store: keystore.NewMemory(0), Presence: ctap2.AutoPresence{}})
	if err != nil {
		t.Fatal(err)
	}
	asked := 0
	pin := func(context.Context) (string, error) { asked++; return "1234", nil }
	session := func() *client.Session {
		s, err := client.NewSession(ctx, client.Direct{A: a}, pin)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := session()
	if changed, err := s.SetAlwaysUV(ctx, false); changed || err != nil {
		t.Fatalf("alwaysUv off when off: %v %v", changed, err)
	}
	if changed, err := s.SetAlwaysUV(ctx, true); !changed || err != nil || asked != 0 {
		t.Fatalf("alwaysUv on without a PIN: %v %v, PIN asked %d times", changed, err, asked)
	}
	if s = session(); !s.Info.Options["alwaysUv"] {
		t.Fatal("alwaysUv is not on")
	}
	if err := s.SetPIN(ctx, s.Protocol(), "1234"); err != nil {
		t.Fatal(err)
	}
	s = session()
	if err := s.RaiseMinPINLength(ctx, 4, []string{"example.com"}, false); err != nil || asked != 1 {
		t.Fatalf("setMinPINLength with a PIN: %v, PIN asked %d times", err, asked)
	}
	if err := s.EnableEP(ctx); err != nil {
		t.Fatalf("enableEnterpriseAttestation: %v", err)
	}
	if s = session(); !s.Info.Options["ep"] {
		t.Error("enterprise attestation is not on")
	}
	s.Info.Options = map[string]bool{"clientPin": true}
	var unsupported *client.UnsupportedError
	if _, err := s.SetAlwaysUV(ctx, false); !errors.As(err, &unsupported) || unsupported.Feature != "alwaysUv" {
		t.Errorf("alwaysUv on a key without it: %v", err)
	}
	if err := s.RaiseMinPINLength(ctx, 6, nil, false); !errors.As(err, &unsupported) {
		t.Errorf("setMinPINLength on a key without it: %v", err)
	}
	if err := s.EnableEP(ctx); !errors.As(err, &unsupported) {
		t.Errorf("ep on a key without it: %v", err)
	}
}
