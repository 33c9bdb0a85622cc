// Package keyproc is the one harness of the process-level tests: it builds
// the vkey command and runs it as a child process for tests that drive it
// with clients written by others (libfido2, python-fido2, a D-Bus
// notification server, the vkey CLI itself, ...). Each key runs with its
// own XDG_RUNTIME_DIR (a short folder: unix socket paths are limited to
// 108 bytes) and XDG_DATA_HOME, and its own name if asked, so its control
// socket, state and name never meet another test's.
package keyproc

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vkey-dev/vkey/internal/procout"
)

var build struct {
	once sync.Once
	path string
	err  error
}

// Binary builds github.com/vkey-dev/vkey/cmd/vkey once per test process
// (CGO_ENABLED=0, as it is shipped) and returns its path. With VKEY_BIN
// set, it returns that binary instead (a test binary run where there is no
// Go toolchain, such as the VM guest).
func Binary(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("VKEY_BIN"); bin != "" {
		return bin
	}
	build.once.Do(func() {
		dir, err := os.MkdirTemp("", "vkey-keyproc")
		if err != nil {
			build.err = err
			return
		}
		build.path = filepath.Join(dir, "vkey")
		cmd := exec.Command("go", "build", "-o", build.path, "github.com/vkey-dev/vkey/cmd/vkey")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("go build ./cmd/vkey: %v\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.path
}

// Key is a running `vkey run`.
type Key struct {
	// Name is the key's name (Options.Name, or vkey's default).
	Name string
	// Where is the address hid.Dial opens, from what the key printed to
	// its --ready-file: a pty path (its --link), udp:HOST:PORT or a
	// hidraw path.
	Where string
	// Runtime is the key's XDG_RUNTIME_DIR; its state is in Runtime/data.
	Runtime string
	// Env is the key's environment: a `vkey` command run with it finds the
	// key's control socket.
	Env []string
	// Output is the key's stdout and stderr so far.
	Output *procout.Buffer
	// Cmd is the running process; the harness reaps it (see Exited).
	Cmd *exec.Cmd

	exited chan struct{}
}

// Options change how Start runs the key.
type Options struct {
	// Name, if set, is passed as --name.
	Name string
	// Env is added to the key's environment (after XDG_RUNTIME_DIR and
	// XDG_DATA_HOME, so it can override them).
	Env []string
}

// Start runs `vkey run --ready-file F args...` and waits until the key is
// ready; the key is stopped (SIGTERM, then SIGKILL after 5 s) when the test
// ends, and its output is logged if the test failed.
func Start(t testing.TB, opts Options, args ...string) *Key {
	t.Helper()
	bin := Binary(t)
	dir, err := os.MkdirTemp("", "vkrt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ready := filepath.Join(dir, "ready")
	run := []string{"run", "--ready-file", ready}
	name := "vkey"
	if opts.Name != "" {
		run, name = append(run, "--name", opts.Name), opts.Name
	}
	cmd := exec.Command(bin, append(run, args...)...)
	out := &procout.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+dir, "XDG_DATA_HOME="+filepath.Join(dir, "data"))
	cmd.Env = append(cmd.Env, opts.Env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	k := &Key{Name: name, Runtime: dir, Env: cmd.Env, Output: out, Cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(k.exited) }()
	t.Cleanup(func() {
		k.Stop()
		if t.Failed() {
			t.Logf("vkey output:\n%s", out.String())
		}
	})
	deadline := time.After(15 * time.Second)
	for {
		if b, err := os.ReadFile(ready); err == nil && bytes.HasSuffix(b, []byte("\n")) {
			k.Where = Address(strings.TrimSpace(string(b)))
			return k
		}
		select {
		case <-k.exited:
			t.Fatalf("vkey run exited before it was ready:\n%s", out.String())
		case <-deadline:
			t.Fatalf("vkey did not become ready within 15 s:\n%s", out.String())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Address turns what `vkey run` prints ("LINK (-> /dev/pts/N)") into an
// address hid.Dial accepts.
func Address(where string) string {
	if i := strings.Index(where, " (-> "); i >= 0 {
		return where[:i]
	}
	return where
}

// Stop ends the key with SIGTERM (SIGKILL after 5 seconds) and waits.
func (k *Key) Stop() {
	select {
	case <-k.exited:
		return
	default:
	}
	_ = k.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-k.exited:
	case <-time.After(5 * time.Second):
		_ = k.Cmd.Process.Kill() // only the key this test started
		<-k.exited
	}
}

// Exited is closed once the process has ended.
func (k *Key) Exited() <-chan struct{} { return k.exited }

// Socket is the key's control socket.
func (k *Key) Socket() string { return filepath.Join(k.Runtime, "vkey", k.Name+".sock") }

// CLI runs `vkey args...` in the key's environment and returns its
// combined output.
func (k *Key) CLI(t testing.TB, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(Binary(t), args...)
	cmd.Env = k.Env
	out, err := cmd.CombinedOutput()
	return string(out), err
}
