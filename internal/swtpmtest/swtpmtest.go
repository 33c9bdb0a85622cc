// Package swtpmtest starts Debian's swtpm (a software TPM 2.0) for tests,
// package tpm's own included (so it must not import tpm): each Server serves a TPM state directory on a unix
// socket, in a short directory under /tmp (unix socket paths are limited to
// 108 bytes), and is stopped when the test ends. Tests skip when swtpm is
// not installed.
package swtpmtest

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/vkey-dev/vkey/internal/procout"
)

// startTimeout bounds how long Start waits for swtpm to accept connections.
const startTimeout = 30 * time.Second

// Server is a running swtpm serving one TPM state on a unix socket.
type Server struct {
	// Dir is the TPM state directory; it is removed when the test ends
	// unless the caller made it.
	Dir string
	// Socket is the path of the TPM command socket.
	Socket string

	cmd  *exec.Cmd
	done chan error
	log  procout.Buffer // swtpm's stderr, shown if the test fails
}

// Need skips the test when swtpm is not installed.
func Need(tb testing.TB) {
	tb.Helper()
	if _, err := exec.LookPath("swtpm"); err != nil {
		tb.Skip("swtpm not on PATH (apt-get install swtpm): skipping tests against a software TPM")
	}
}

// NewStateDir makes an empty TPM state directory with a path short enough
// for a unix socket, removed when the test ends.
func NewStateDir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.MkdirTemp("/tmp", "vk")
	if err != nil {
		tb.Fatalf("swtpm state directory: %v", err)
	}
	tb.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// Start starts swtpm on a fresh TPM state (a TPM with new, random seeds),
// already started up (TPM2_Startup(CLEAR)). It skips the test when swtpm is
// missing and stops swtpm when the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	Need(tb)
	return StartDir(tb, NewStateDir(tb))
}

// DefaultFlags is the swtpm --flags value of Start and StartDir: the TPM
// needs no CMD_INIT and is already started up (TPM2_Startup(CLEAR)).
const DefaultFlags = "not-need-init,startup-clear"

// StartDir is Start on the TPM state in dir (for example one that an earlier
// Server used, to model a machine restart). dir's path must be short.
func StartDir(tb testing.TB, dir string) *Server {
	tb.Helper()
	return StartDirFlags(tb, dir, DefaultFlags)
}

// StartDirFlags is StartDir with swtpm's --flags value; for example
// "not-need-init" serves a TPM that has not received TPM2_Startup.
func StartDirFlags(tb testing.TB, dir, flags string) *Server {
	tb.Helper()
	Need(tb)
	sock := filepath.Join(dir, "sock")
	_ = os.Remove(sock)
	s := &Server{Dir: dir, Socket: sock, done: make(chan error, 1)}
	cmd := exec.Command("swtpm", "socket", "--tpm2",
		"--tpmstate", "dir="+dir,
		"--server", "type=unixio,path="+sock,
		"--ctrl", "type=unixio,path="+filepath.Join(dir, "ctrl"),
		"--flags", flags)
	cmd.Stderr = &s.log
	s.cmd = cmd
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start swtpm: %v", err)
	}
	go func() { s.done <- cmd.Wait() }()
	tb.Cleanup(func() {
		s.Stop()
		if tb.Failed() {
			tb.Logf("swtpm output:\n%s", s.log.String())
		}
	})
	ctx, cancel := context.WithTimeout(tb.Context(), startTimeout)
	defer cancel()
	if err := s.wait(ctx); err != nil {
		tb.Fatalf("swtpm on %s: %v", sock, err)
	}
	return s
}

// wait returns once swtpm accepts connections on its socket.
func (s *Server) wait(ctx context.Context) error {
	var d net.Dialer
	for {
		if c, err := d.DialContext(ctx, "unix", s.Socket); err == nil {
			return c.Close()
		}
		select {
		case err := <-s.done:
			s.done <- err
			return &exitError{err}
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// exitError reports that swtpm exited before it served.
type exitError struct{ err error }

func (e *exitError) Error() string {
	if e.err == nil {
		return "swtpm exited early"
	}
	return "swtpm exited early: " + e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// Spec is the tpm.Open spec of this TPM: "swtpm:" + Socket.
func (s *Server) Spec() string { return "swtpm:" + s.Socket }

// Stop terminates swtpm (SIGTERM, then SIGKILL after 10 seconds) and waits
// for it. It is idempotent; the test's cleanup calls it too.
func (s *Server) Stop() {
	if s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		s.done <- err
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		err := <-s.done
		s.done <- err
	}
}
