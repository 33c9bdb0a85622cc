package e2e

import (
	"context"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/vkey-dev/vkey/hid"
)

// TestE2EStopWithPTYClient: `vkey run --transport pty` exits promptly on
// SIGTERM after libfido2 (fido2-token -I) has used its pty and while
// another client still holds the pty open (an earlier key took about 2 s).
// The budget is wider than the library's (TestPTYStopWithClient): it
// includes the process's exit on a shared machine.
func TestE2EStopWithPTYClient(t *testing.T) {
	needTool(t, "fido2-token")
	k := startKey(t, "--transport", "pty", "--ephemeral", "--presence", "auto")
	if out, err := exec.Command("fido2-token", "-I", k.Where).CombinedOutput(); err != nil {
		t.Fatalf("fido2-token -I: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	c, err := hid.Dial(ctx, k.Where)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Ping(ctx, []byte("still here")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := k.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-k.Exited():
	case <-time.After(5 * time.Second):
		t.Fatal("vkey run did not exit within 5 s of SIGTERM")
	}
	took := time.Since(start)
	t.Logf("vkey run exited %v after SIGTERM", took)
	if took > 500*time.Millisecond {
		t.Errorf("vkey run took %v to exit with a pty client attached, want < 500 ms", took)
	}
}
