package vkey_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/vkey-dev/vkey"
)

// TestFindDevice: running keys are found through their control sockets in
// the runtime folder; a name, a path or nothing resolves as `--device`
// says, and none or several keys are typed errors.
func TestFindDevice(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := vkey.OnlyRunningKey(ctx); !errors.Is(err, vkey.ErrNoDevice) {
		t.Fatalf("no key running: %v", err)
	}
	var notRunning *vkey.NotRunningError
	if _, err := vkey.FindDevice(ctx, "nokey"); !errors.As(err, &notRunning) || notRunning.Socket != vkey.DefaultControlSocket("nokey") {
		t.Fatalf("a key that is not running: %v", err)
	}
	start := func(name string) *vkey.Key {
		k, err := vkey.New(ctx, vkey.Options{Name: name, Transport: vkey.PTY, ControlSocket: vkey.DefaultControlSocket(name)})
		if err != nil {
			t.Skipf("no pty key: %v", err)
		}
		t.Cleanup(func() { k.Close() })
		return k
	}
	a := start("a")
	only, err := vkey.OnlyRunningKey(ctx)
	if err != nil || only.Name != "a" || only.Transport != a.Where || only.Socket != vkey.DefaultControlSocket("a") {
		t.Fatalf("the only key: %+v %v (it is on %s)", only, err, a.Where)
	}
	want := vkey.Device{Addr: a.Where, ControlSocket: vkey.DefaultControlSocket("a")}
	for _, spec := range []string{"", "a", a.Where} {
		if d, err := vkey.FindDevice(ctx, spec); err != nil || d != want {
			t.Errorf("FindDevice(%q) = %+v %v, want %+v", spec, d, err, want)
		}
	}
	if d, err := vkey.FindDevice(ctx, "udp:127.0.0.1:1"); err != nil || d != (vkey.Device{Addr: "udp:127.0.0.1:1"}) {
		t.Errorf("a udp address no vkey serves: %+v %v", d, err)
	}
	start("b")
	var choice *vkey.ChoiceError
	if _, err := vkey.FindDevice(ctx, ""); !errors.As(err, &choice) || !slices.Equal(choice.VKeys, []string{"a", "b"}) {
		t.Errorf("two keys running: %v", err)
	}
	if keys, err := vkey.RunningKeys(ctx); err != nil || len(keys) != 2 || keys[1].Name != "b" {
		t.Errorf("RunningKeys: %+v %v", keys, err)
	}
}
