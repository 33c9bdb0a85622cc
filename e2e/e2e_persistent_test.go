package e2e

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/vkey-dev/vkey/ctap2"
)

// TestE2EPersistentTokenRestart (issue 13, CTAP 2.2 persistent
// pinUvAuthToken): a token asked for with the pcmr permission still reads
// credential metadata after `vkey run` restarts on the same state, is
// nowhere in the state files in plaintext, and after changePIN (and
// another restart) is refused with CTAP2_ERR_PIN_AUTH_INVALID.
func TestE2EPersistentTokenRestart(t *testing.T) {
	ctx := context.Background()
	state := filepath.Join(t.TempDir(), "state")
	start := func() *e2eKey {
		return startKey(t, "--state", state, "--transport", "udp", "--udp-addr", "127.0.0.1:0", "--presence", "auto")
	}
	k := start()
	c := dial(t, k.Where)
	if err := c.SetPIN(ctx, 2, "1234"); err != nil {
		t.Fatal(err)
	}
	tok, err := c.PINToken(ctx, 2, "1234", ctap2.PermPersistentCredMgmtRO, "")
	if err != nil {
		t.Fatal(err)
	}
	stopKey(t, k)
	err = filepath.WalkDir(state, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err == nil && bytes.Contains(b, tok.Value) {
			t.Errorf("%s holds the persistent token in plaintext", path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	k = start()
	c = dial(t, k.Where)
	if _, _, err := c.CredentialManagement(tok, false).Metadata(ctx); err != nil {
		t.Fatalf("metadata with the persistent token after a restart: %v", err)
	}
	if err := c.ChangePIN(ctx, 2, "1234", "5678"); err != nil {
		t.Fatal(err)
	}
	stopKey(t, k)
	k = start()
	c = dial(t, k.Where)
	_, _, err = c.CredentialManagement(tok, false).Metadata(ctx)
	if st := ctap2.Status(0); !errors.As(err, &st) || st != ctap2.ErrPINAuthInvalid {
		t.Errorf("metadata with the persistent token after changePIN: %v, want CTAP2_ERR_PIN_AUTH_INVALID", err)
	}
	stopKey(t, k)
}
