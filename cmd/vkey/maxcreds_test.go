package main

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/vkey-dev/vkey"
)

// TestMaxCredentialsFlag: --max-credentials sets the discoverable limit of
// the persistent and the ephemeral store, 0 meaning none, and a negative
// value is a usage error.
func TestMaxCredentialsFlag(t *testing.T) {
	pass := filepath.Join(t.TempDir(), "pass")
	if err := os.WriteFile(pass, []byte("passphrase\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		max       int
		ephemeral bool
		want      int
	}{{3, false, 3}, {0, false, math.MaxInt32}, {7, true, 7}, {0, true, math.MaxInt32}} {
		o := &runOptions{name: "t", keys: "software", transport: "pty", uv: "none", maxCredentials: c.max, ephemeral: c.ephemeral}
		if !c.ephemeral {
			o.state, o.passphraseFile = filepath.Join(t.TempDir(), "state"), pass
		}
		if err := o.validate(); err != nil {
			t.Fatal(err)
		}
		opts, err := stateOptions(o.name, o.state, o.ephemeral, o.passphraseFile)
		if err != nil {
			t.Fatal(err)
		}
		opts.Keys, opts.MaxCredentials = vkey.SoftwareKeys, maxCredentials(o.maxCredentials)
		s, closeState, err := vkey.OpenState(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.RemainingDiscoverable(); got != c.want {
			t.Errorf("--max-credentials %d (ephemeral %v): %d remaining, want %d", c.max, c.ephemeral, got, c.want)
		}
		closeState()
	}
	o := &runOptions{name: "t", keys: "software", transport: "pty", uv: "none", maxCredentials: -1}
	if err := o.validate(); err == nil {
		t.Error("--max-credentials -1 accepted")
	}
}
