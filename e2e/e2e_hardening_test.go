package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/internal/keyproc"
)

// TestE2ETouchLineAfterModeSwitch: a key started with automatic presence
// and switched to touch through the control API announces the next request
// ("touch requested"), with what comes from the request escaped
// (issue 11, points 15 and 9).
func TestE2ETouchLineAfterModeSwitch(t *testing.T) {
	k := startManagedKey(t, "switch", "--ephemeral", "--transport", "udp", "--udp-addr", "127.0.0.1:0", "--presence", "auto")
	if err := k.api().Do(context.Background(), http.MethodPut, "/presence/auto", map[string]bool{"on": false}, nil); err != nil {
		t.Fatal(err)
	}
	c, closeC := k.ctapClient(t)
	defer closeC()
	done := registerInBackground(c, "evil.example\r\x1b[2Kaccounts.google.com", 30*time.Second)
	waitPending(t, k)
	want := `vkey: touch requested (makeCredential for evil.example\x0d\x1b[2Kaccounts.google.com)`
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(k.Output.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no escaped touch line %q in:\n%q", want, k.Output.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if strings.Contains(k.Output.String(), "\x1b") {
		t.Errorf("a terminal escape reached the output: %q", k.Output.String())
	}
	k.ok(t, nil, "touch")
	if err := <-done; err != nil {
		t.Errorf("registration: %v", err)
	}
}

// TestE2EPlantedRuntimeFolder: without XDG_RUNTIME_DIR, the CLI and
// `vkey run` refuse a /tmp/vkey-UID that another user created first, and
// say what to do (issue 11, point 5).
func TestE2EPlantedRuntimeFolder(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("only root can plant a folder owned by another user")
	}
	tmp := t.TempDir()
	planted := filepath.Join(tmp, fmt.Sprintf("vkey-%d", os.Getuid()))
	if err := os.Mkdir(planted, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(planted, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(planted, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "XDG_RUNTIME_DIR=") && !strings.HasPrefix(kv, "TMPDIR=") {
			env = append(env, kv)
		}
	}
	env = append(env, "TMPDIR="+tmp, "XDG_DATA_HOME="+filepath.Join(tmp, "data"))
	for _, args := range [][]string{
		{"touch"},
		{"devices"},
		{"info"},
		{"run", "--ephemeral", "--transport", "udp", "--udp-addr", "127.0.0.1:0", "--name", "planted"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		cmd := exec.CommandContext(ctx, keyproc.Binary(t), args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		cancel()
		if err == nil || !strings.Contains(string(out), "belongs to uid 4242") || !strings.Contains(string(out), "XDG_RUNTIME_DIR") {
			t.Errorf("vkey %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	if entries, _ := os.ReadDir(planted); len(entries) != 0 {
		t.Errorf("vkey wrote into the planted folder: %v", entries)
	}
}

// TestE2EBackupExportFailureChangesNothing: an export that cannot write
// its file leaves every credential's BS flag as it was, and an existing
// --out file is replaced only with --force (issue 11, point 12).
func TestE2EBackupExportFailureChangesNothing(t *testing.T) {
	state := filepath.Join(t.TempDir(), "a")
	ctx := context.Background()
	k := startKey(t, "--state", state, "--transport", "udp", "--udp-addr", "127.0.0.1:0", "--presence", "auto", "--passkeys", "syncable")
	req := &ctap2.MakeCredentialRequest{ClientDataHash: make([]byte, 32), RP: &ctap2.RPEntity{ID: "example.com"},
		User: &ctap2.UserEntity{ID: []byte("alice"), Name: "alice"}, PubKeyCredParams: esParams(t), Options: map[string]bool{"rk": true}}
	if _, err := dial(t, k.Where).MakeCredential(ctx, req); err != nil {
		t.Fatal(err)
	}
	stopKey(t, k)
	backupState := func() bool {
		t.Helper()
		k := startKey(t, "--state", state, "--transport", "udp", "--udp-addr", "127.0.0.1:0", "--presence", "auto")
		defer stopKey(t, k)
		resp, err := dial(t, k.Where).GetAssertion(ctx, &ctap2.GetAssertionRequest{RPID: "example.com", ClientDataHash: make([]byte, 32),
			Options: map[string]bool{"up": false}})
		if err != nil {
			t.Fatal(err)
		}
		return resp.AuthData[32]&0x10 != 0
	}
	vkey := func(args ...string) (string, error) {
		cmd := exec.Command(keyproc.Binary(t), append([]string{"backup", "export", "--state", state}, args...)...)
		cmd.Env = append(os.Environ(), "VKEY_BACKUP_PASSPHRASE=correct horse battery")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	dir := t.TempDir()
	if out, err := vkey("--out", filepath.Join(dir, "missing", "backup")); err == nil {
		t.Fatalf("export into a missing folder succeeded: %s", out)
	}
	if backupState() {
		t.Error("a failed export marked the passkey backed up (BS=1)")
	}
	existing := filepath.Join(dir, "existing")
	if err := os.WriteFile(existing, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := vkey("--out", existing); err == nil || !strings.Contains(out, "--force") {
		t.Errorf("export over an existing file: %v, %q; want a refusal naming --force", err, out)
	}
	if b, _ := os.ReadFile(existing); string(b) != "keep me" {
		t.Errorf("the existing file was overwritten: %q", b)
	}
	if backupState() {
		t.Error("a refused export marked the passkey backed up (BS=1)")
	}
	if out, err := vkey("--out", existing, "--force"); err != nil {
		t.Fatalf("export --force: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(existing); string(b) == "keep me" {
		t.Error("--force did not replace the file")
	}
	if !backupState() {
		t.Error("a successful export did not mark the passkey backed up")
	}
}

// TestE2EManagementDuringTouch: while a registration waits for its touch,
// the control API answers at once and a power cycle cancels the waiting
// request at once, as unplugging would (issue 11, point 10).
func TestE2EManagementDuringTouch(t *testing.T) {
	k := startManagedKey(t, "pending", "--ephemeral", "--transport", "udp", "--udp-addr", "127.0.0.1:0", "--presence", "touch")
	c, closeC := k.ctapClient(t)
	defer closeC()
	done := registerInBackground(c, "example.com", 40*time.Second)
	waitPending(t, k)
	quick := func(what, method, path string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := k.api().Do(ctx, method, path, nil, nil); err != nil {
			t.Fatalf("%s while a touch is pending: %v", what, err)
		}
	}
	quick("GET /credentials", http.MethodGet, "/credentials")
	quick("POST /power-cycle", http.MethodPost, "/power-cycle")
	select {
	case err := <-done:
		if !errors.Is(err, ctap2.ErrKeepaliveCancel) {
			t.Errorf("the waiting registration after a power cycle: %v, want CTAP2_ERR_KEEPALIVE_CANCEL", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the power cycle did not cancel the waiting registration")
	}
}
