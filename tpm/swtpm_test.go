package tpm

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-tpm/tpm2"
	"github.com/vkey-dev/vkey/internal/swtpmtest"
	"github.com/vkey-dev/vkey/keystore"
)

// openSwtpm starts a fresh swtpm and opens it; both end with the test.
func openSwtpm(tb testing.TB) (*TPM, *swtpmtest.Server) {
	tb.Helper()
	p := swtpmtest.Start(tb)
	tp, err := Open(p.Spec())
	if err != nil {
		tb.Fatalf("Open(%s): %v", p.Spec(), err)
	}
	tb.Cleanup(func() { _ = tp.Close() })
	return tp, p
}

func TestOpenErrors(t *testing.T) {
	dir := swtpmtest.NewStateDir(t)
	if _, err := Open("swtpm:" + filepath.Join(dir, "nothing")); !errors.Is(err, ErrNoTPM) {
		t.Errorf("Open(missing socket) = %v, want ErrNoTPM", err)
	}
	if _, err := Open(filepath.Join(dir, "tpmrm0")); !errors.Is(err, ErrNoTPM) {
		t.Errorf("Open(missing device) = %v, want ErrNoTPM", err)
	} else if got := err.Error(); !strings.Contains(got, "no TPM found at "+filepath.Join(dir, "tpmrm0")) {
		t.Errorf("error %q does not say where", got)
	}
	// A regular file is not a TPM.
	f := filepath.Join(dir, "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(f); !errors.Is(err, ErrNoTPM) {
		t.Errorf("Open(regular file) = %v, want ErrNoTPM", err)
	}
}

func TestOpenPermissionMessage(t *testing.T) {
	err := permissionError("/dev/tpmrm0", os.ErrPermission)
	if !errors.Is(err, ErrPermission) || !strings.Contains(err.Error(), "sudo usermod -aG tss $USER") {
		t.Errorf("permission error = %v", err)
	}
}

// TestStartupNeeded opens a swtpm that has not received TPM2_Startup.
func TestStartupNeeded(t *testing.T) {
	p := swtpmtest.StartDirFlags(t, swtpmtest.NewStateDir(t), "not-need-init")
	tp, err := Open(p.Spec())
	if err != nil {
		t.Fatalf("Open(unstarted swtpm): %v", err)
	}
	defer tp.Close()
	if _, _, err := tp.KeyProvider().Generate(keystore.AlgES256); err != nil {
		t.Fatal(err)
	}
}

func TestErrorMapping(t *testing.T) {
	tp := &TPM{desc: "test TPM"}
	if err := tp.wrap("sign", tpm2.TPMRCLockout); !errors.Is(err, ErrLockout) || !errors.Is(err, tpm2.TPMRCLockout) {
		t.Errorf("lockout: %v", err)
	}
	if err := tp.wrap("create", tpm2.TPMRCBadAuth); !strings.Contains(err.Error(), "owner hierarchy") {
		t.Errorf("bad auth: %v", err)
	}
	k := &Key{tp: tp, b: &blob{kind: kindSigningKey}}
	if _, err := k.Sign(nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Sign on a closed TPM: %v", err)
	}
}
