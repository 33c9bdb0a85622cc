package tpm

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/vkey-dev/vkey/keystore"
)

// swtpmProc is a swtpm process serving a TPM 2.0 on a unix socket.
type swtpmProc struct {
	dir  string
	sock string
	cmd  *exec.Cmd
	done chan error
	log  syncBuffer // swtpm's stderr, shown if the test fails
}

// syncBuffer is a bytes.Buffer safe for the writer goroutine of exec.Cmd.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// needSwtpm skips the test when swtpm is not installed.
func needSwtpm(tb testing.TB) {
	tb.Helper()
	if _, err := exec.LookPath("swtpm"); err != nil {
		tb.Skip("swtpm not on PATH (apt-get install swtpm): skipping tests against a software TPM")
	}
}

// newStateDir makes a TPM state directory short enough for a unix socket
// path (< 108 bytes), removed when the test ends.
func newStateDir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.MkdirTemp("/tmp", "vk")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// startSwtpm starts swtpm on the state in dir; the test stops it at cleanup
// (stopping it earlier is fine).
func startSwtpm(tb testing.TB, dir string) *swtpmProc {
	tb.Helper()
	return startSwtpmFlags(tb, dir, "not-need-init,startup-clear")
}

// startSwtpmFlags is startSwtpm with swtpm's --flags.
func startSwtpmFlags(tb testing.TB, dir, flags string) *swtpmProc {
	tb.Helper()
	needSwtpm(tb)
	sock := filepath.Join(dir, "sock")
	_ = os.Remove(sock)
	p := &swtpmProc{dir: dir, sock: sock, done: make(chan error, 1)}
	cmd := exec.Command("swtpm", "socket", "--tpm2",
		"--tpmstate", "dir="+dir,
		"--server", "type=unixio,path="+sock,
		"--ctrl", "type=unixio,path="+filepath.Join(dir, "ctrl"),
		"--flags", flags)
	p.cmd = cmd
	cmd.Stderr = &p.log
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start swtpm: %v", err)
	}
	go func() { p.done <- cmd.Wait() }()
	tb.Cleanup(func() {
		p.stop()
		if tb.Failed() {
			tb.Logf("swtpm output:\n%s", p.log.String())
		}
	})

	// Wait until swtpm accepts connections (it creates the socket first).
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		if c, err := net.Dial("unix", sock); err == nil {
			_ = c.Close()
			return p
		}
		select {
		case err := <-p.done:
			p.done <- err
			tb.Fatalf("swtpm exited early: %v", err)
		case <-ctx.Done():
			tb.Fatalf("swtpm did not open %s", sock)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// spec is the Open spec for this swtpm.
func (p *swtpmProc) spec() string { return "swtpm:" + p.sock }

// stop terminates swtpm and waits for it; it is idempotent.
func (p *swtpmProc) stop() {
	if p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		err := <-p.done
		p.done <- err
	}
}

// openSwtpm starts a fresh swtpm and opens it; both end with the test.
func openSwtpm(tb testing.TB) (*TPM, *swtpmProc) {
	tb.Helper()
	p := startSwtpm(tb, newStateDir(tb))
	tp, err := Open(p.spec())
	if err != nil {
		tb.Fatalf("Open(%s): %v", p.spec(), err)
	}
	tb.Cleanup(func() { _ = tp.Close() })
	return tp, p
}

func TestOpenErrors(t *testing.T) {
	dir := newStateDir(t)
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
	p := startSwtpmFlags(t, newStateDir(t), "not-need-init")
	tp, err := Open(p.spec())
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
