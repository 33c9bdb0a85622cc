package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vkey-dev/vkey/internal/keyproc"
)

// TestE2EStateFolderNotTakenOver: `vkey run --state DIR` on a non-empty
// folder that is not a vkey state is refused with a clear message, and the
// folder keeps its content and mode (issue 11 point 7).
func TestE2EStateFolderNotTakenOver(t *testing.T) {
	bin := keyproc.Binary(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "run", "--state", dir, "--transport", "udp", "--udp-addr", "127.0.0.1:0", "--presence", "auto", "--keys", "software", "--name", "takeover")
	cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "not empty") || !strings.Contains(string(out), "--state") {
		t.Fatalf("vkey run on a foreign folder: err %v, output %q", err, out)
	}
	ents, _ := os.ReadDir(dir)
	st, _ := os.Stat(dir)
	if len(ents) != 1 || st.Mode().Perm() != 0o755 {
		t.Fatalf("folder changed: %d entries, mode %v", len(ents), st.Mode())
	}
}
