package vkey_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/vkey-dev/vkey"
	"github.com/vkey-dev/vkey/ctap2/client"
	"github.com/vkey-dev/vkey/internal/desktoptest"
	"github.com/vkey-dev/vkey/presence"
)

// TestDesktopOption: with Options.Desktop a touch is asked for through a
// desktop notification naming the operation and RP, and its Approve button
// answers it; without a session bus, Notify says so and the key still
// waits for touches from elsewhere.
func TestDesktopOption(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "")
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	var mu sync.Mutex
	var notes []string
	notify := func(n string) { mu.Lock(); notes = append(notes, n); mu.Unlock() }
	k, err := vkey.New(ctx, vkey.Options{Presence: presence.Touch, Desktop: true, Notify: notify})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if k.Desktop != nil || len(notes) != 1 || !strings.Contains(notes[0], "cannot ask the desktop") {
		t.Errorf("without a bus: desktop %v, notes %q", k.Desktop, notes)
	}
	mu.Unlock()
	k.Close()

	addr := desktoptest.SessionBus(t)
	srv := desktoptest.NewServer(t, addr)
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", addr)
	k, err = vkey.New(ctx, vkey.Options{Presence: presence.Touch, Desktop: true, Notify: notify})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	if k.Desktop == nil {
		t.Fatalf("no desktop on a session bus: %q", notes)
	}
	conn, err := k.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	done := make(chan error, 1)
	go func() {
		_, err := client.New(conn).MakeCredential(ctx, registration("desk.example", "alice"))
		done <- err
	}()
	n := srv.Next(t)
	if !strings.Contains(n.Body, "makeCredential for desk.example") {
		t.Errorf("notification %+v does not name the operation and the RP", n)
	}
	srv.Invoke(t, n.ID, "approve")
	if err := <-done; err != nil {
		t.Fatalf("after Approve: %v", err)
	}
}
