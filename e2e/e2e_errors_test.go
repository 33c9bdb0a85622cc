package e2e

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vkey-dev/vkey/internal/keyproc"
)

// TestE2EUserErrors: what a user can get wrong ends in one sentence that
// says what to do, and a non-zero exit status.
func TestE2EUserErrors(t *testing.T) {
	k := startKey(t, "--ephemeral", "--transport", "udp", "--udp-addr", "127.0.0.1:0", "--presence", "auto")
	addr := strings.TrimPrefix(k.Where, "udp:")
	cases := []struct {
		name   string
		skip   string // a path whose existence makes the case moot
		args   []string
		status int
		want   string
	}{
		{name: "port in use", args: []string{"run", "--ephemeral", "--transport", "udp", "--udp-addr", addr, "--name", "second"}, status: exitError, want: "--udp-addr"},
		{name: "name in use", args: []string{"run", "--ephemeral", "--transport", "udp", "--udp-addr", "127.0.0.1:0"}, status: exitError, want: "--name NAME"},
		{name: "no uhid", skip: "/dev/uhid", args: []string{"run", "--ephemeral", "--transport", "uhid", "--name", "nouhid"}, status: exitError, want: "sudo modprobe uhid"},
		{name: "no TPM", skip: "/dev/tpmrm0", args: []string{"run", "--ephemeral", "--keys", "tpm", "--transport", "udp", "--udp-addr", "127.0.0.1:0", "--name", "notpm"}, status: exitError, want: "--keys software"},
		{name: "remote udp", args: []string{"run", "--ephemeral", "--transport", "udp", "--udp-addr", "0.0.0.0:0", "--name", "remote"}, status: exitUsage, want: "--udp-allow-remote"},
		{name: "unknown transport", args: []string{"run", "--transport", "usb3"}, status: exitUsage, want: "want auto, uhid, pty or udp"},
		{name: "unknown flag", args: []string{"run", "--colour"}, status: exitUsage, want: "unknown flag"},
		{name: "unknown uv", args: []string{"run", "--uv", "retina"}, status: exitUsage, want: "want none or builtin"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.skip != "" {
				if _, err := os.Stat(tc.skip); err == nil {
					t.Skipf("%s exists on this machine", tc.skip)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, keyproc.Binary(t), tc.args...)
			cmd.Env = k.Env
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != tc.status {
				t.Fatalf("exit %v, want status %d\n%s", err, tc.status, out)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "vkey: ") || !strings.Contains(last, tc.want) {
				t.Errorf("error %q, want one line naming %q", last, tc.want)
			}
		})
	}
}
