// Package e2e is the harness of the process-level tests: it builds the
// vkey binary once per test process and starts `vkey run` in an isolated
// runtime folder (its own control socket), with its own state folder
// (XDG_DATA_HOME) and name, and stops it when the test ends.
package e2e

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

// Binary builds cmd/vkey once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		dir, err := os.MkdirTemp("", "vkey-e2e-bin")
		if err != nil {
			build.err = err
			return
		}
		build.path = filepath.Join(dir, "vkey")
		out, err := exec.Command("go", "build", "-o", build.path, "github.com/vkey-dev/vkey/cmd/vkey").CombinedOutput()
		if err != nil {
			build.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.path
}

// Key is a running `vkey run`.
type Key struct {
	// Name is the key's --name ("vkey" when none was given).
	Name string
	// Where is the address hid.Dial opens: a pty path (a --link), a
	// hidraw path or udp:HOST:PORT.
	Where string
	// Runtime is the key's XDG_RUNTIME_DIR; its state is in Runtime/data.
	Runtime string
	// Env is the environment the key runs in: a CLI command given it
	// finds the key's control socket and state.
	Env []string
	// Cmd is the process; Out collects its stdout and stderr.
	Cmd *exec.Cmd
	Out *procout.Buffer

	exited chan struct{}
}

// Start runs `vkey run --name NAME args...` (no --name when name is
// empty) with a fresh runtime folder and state, waits until it is ready,
// and stops it when the test ends (printing its output if the test
// failed).
func Start(t testing.TB, name string, args ...string) *Key {
	t.Helper()
	bin := Binary(t)
	runtime, err := os.MkdirTemp("", "vkrt") // short: unix socket paths are limited to 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(runtime) })
	ready := filepath.Join(runtime, "ready")
	k := &Key{Name: name, Runtime: runtime, Out: &procout.Buffer{}}
	run := []string{"run", "--ready-file", ready}
	if name != "" {
		run = append(run, "--name", name)
	} else {
		k.Name = "vkey"
	}
	k.Cmd = exec.Command(bin, append(run, args...)...)
	k.Cmd.Stdout, k.Cmd.Stderr = k.Out, k.Out
	k.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+runtime, "XDG_DATA_HOME="+filepath.Join(runtime, "data"))
	k.Cmd.Env = k.Env
	if err := k.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = k.Cmd.Wait(); close(exited) }()
	k.exited = exited
	t.Cleanup(func() {
		k.Stop()
		if t.Failed() {
			t.Logf("vkey run output:\n%s", k.Out.String())
		}
	})
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if b, err := os.ReadFile(ready); err == nil && bytes.HasSuffix(b, []byte("\n")) {
			k.Where = Address(strings.TrimSpace(string(b)))
			return k
		}
		select {
		case <-exited:
			t.Fatalf("vkey run exited before it was ready:\n%s", k.Out.String())
		default:
		}
	}
	t.Fatalf("vkey run did not become ready:\n%s", k.Out.String())
	return nil
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
		_ = k.Cmd.Process.Kill()
		<-k.exited
	}
}

// Exited is closed once the process has ended.
func (k *Key) Exited() <-chan struct{} { return k.exited }

// Socket is the key's control socket.
func (k *Key) Socket() string { return filepath.Join(k.Runtime, "vkey", k.Name+".sock") }
