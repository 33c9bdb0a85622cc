package presence

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/internal/clientsummary"
	"github.com/vkey-dev/vkey/internal/desktoptest"
)

// desktopBroker is a Broker in Touch mode asking through a Desktop, wired as
// `vkey run --presence desktop` wires them.
func desktopBroker(t *testing.T, addr string, timeout time.Duration) *desktopKey {
	t.Helper()
	var b *Broker
	// A context that ends right after setup, as vkey run's does.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d, err := NewDesktop(ctx, DesktopOptions{Address: addr, Timeout: timeout,
		Approve: func() bool { return b.Approve() }, Deny: func() bool { return b.Deny() }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if !d.Actions {
		t.Fatal("the service offers actions, but Desktop did not see it")
	}
	b = New(Options{Mode: Touch, Timeout: timeout})
	return &desktopKey{Broker: b, d: d, t: t}
}

// desktopKey is a Broker that asks the desktop once a request waits, and
// withdraws the notification when it ends, as vkey run's observer does.
type desktopKey struct {
	*Broker
	d *Desktop
	t *testing.T
}

func request(k *desktopKey, req ctap2.PresenceRequest) chan error {
	done := make(chan error, 1)
	go func() {
		var ctx context.Context
		ctx = ctap2.WithPresenceWaiting(context.Background(), func() {
			if err := k.d.Ask(ctx, req); err != nil {
				k.t.Errorf("Ask: %v", err)
			}
		})
		err := k.Request(ctx, req)
		k.d.Done()
		done <- err
	}()
	return done
}

func waitAnswer(t *testing.T, done chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("the request got no answer")
		return nil
	}
}

func TestDesktopPresence(t *testing.T) {
	clientsummary.Record(t, "freedesktop notifications on a real dbus-daemon (the test plays the service)",
		"Approve = touch, Deny and expiry refuse, dismissed = no answer, spoofed signals ignored")
	addr := desktoptest.SessionBus(t)
	srv := desktoptest.NewServer(t, addr)
	b := desktopBroker(t, addr, 5*time.Second)

	t.Run("approve", func(t *testing.T) {
		done := request(b, ctap2.PresenceRequest{Command: "makeCredential", RPID: "<b>evil</b>&co\x1b[31m", UserName: "alice"})
		n := srv.Next(t)
		if !strings.Contains(n.Body, "makeCredential for &lt;b&gt;evil&lt;/b&gt;&amp;co\uFFFD[31m (alice)") {
			t.Errorf("body %q: the RP ID is not escaped", n.Body)
		}
		if strings.Join(n.Actions, ",") != "approve,Approve,deny,Deny" || n.Timeout != 5000 {
			t.Errorf("actions %q, timeout %d ms", n.Actions, n.Timeout)
		}
		srv.Invoke(t, n.ID, "approve")
		if err := waitAnswer(t, done); err != nil {
			t.Fatalf("Approve gave %v, want a touch", err)
		}
	})
	t.Run("deny", func(t *testing.T) {
		done := request(b, ctap2.PresenceRequest{Command: "getAssertion", RPID: "example.org"})
		n := srv.Next(t)
		srv.Invoke(t, n.ID, "deny")
		if err := waitAnswer(t, done); !errors.Is(err, ctap2.ErrPresenceDenied) {
			t.Fatalf("Deny gave %v, want %v", err, ctap2.ErrPresenceDenied)
		}
	})
	t.Run("expired", func(t *testing.T) {
		done := request(b, ctap2.PresenceRequest{Command: "getAssertion", RPID: "example.org"})
		n := srv.Next(t)
		srv.Close(t, n.ID, desktoptest.ClosedExpired)
		if err := waitAnswer(t, done); !errors.Is(err, ctap2.ErrPresenceDenied) {
			t.Fatalf("an expired notification gave %v, want %v", err, ctap2.ErrPresenceDenied)
		}
	})
	t.Run("dismissed then touched", func(t *testing.T) {
		done := request(b, ctap2.PresenceRequest{Command: "getAssertion", RPID: "example.org"})
		n := srv.Next(t)
		srv.Close(t, n.ID, desktoptest.ClosedDismissed)
		srv.Invoke(t, n.ID, "approve") // too late: it was closed
		select {
		case err := <-done:
			t.Fatalf("a dismissed notification answered the request: %v", err)
		case <-time.After(300 * time.Millisecond):
		}
		if !b.Approve() { // vkey touch still works
			t.Fatal("no request was pending")
		}
		if err := waitAnswer(t, done); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("answered elsewhere", func(t *testing.T) {
		done := request(b, ctap2.PresenceRequest{Command: "makeCredential", RPID: "example.org"})
		n := srv.Next(t)
		b.Approve()
		if err := waitAnswer(t, done); err != nil {
			t.Fatal(err)
		}
		if !srv.WasClosed(n.ID) {
			t.Error("the notification stayed up after the request was answered by vkey touch")
		}
	})
	t.Run("answered before the ID arrives", func(t *testing.T) {
		// Other applications' notifications close while the key is idle.
		for i := uint32(1000); i < 1040; i++ {
			srv.Close(t, i, desktoptest.ClosedExpired)
		}
		srv.AnswerBeforeReply("approve")
		defer srv.AnswerBeforeReply("")
		done := request(b, ctap2.PresenceRequest{Command: "getAssertion", RPID: "example.org"})
		srv.Next(t)
		if err := waitAnswer(t, done); err != nil {
			t.Fatalf("an Approve that overtook Notify's reply gave %v", err)
		}
	})
	t.Run("spoofed signal", func(t *testing.T) {
		// Another client of the bus emits a look-alike ActionInvoked.
		other, err := dbus.Connect(addr)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		done := request(b, ctap2.PresenceRequest{Command: "getAssertion", RPID: "example.org"})
		n := srv.Next(t)
		if err := other.Emit(notifyPath, notifyIface+".ActionInvoked", n.ID, "approve"); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			t.Fatalf("a signal from another client answered the request: %v", err)
		case <-time.After(300 * time.Millisecond):
		}
		srv.Invoke(t, n.ID, "deny")
		if err := waitAnswer(t, done); !errors.Is(err, ctap2.ErrPresenceDenied) {
			t.Fatalf("got %v, want %v", err, ctap2.ErrPresenceDenied)
		}
	})
}

func TestDesktopWithoutBus(t *testing.T) {
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "")
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	_, err := NewDesktop(context.Background(), DesktopOptions{Approve: func() bool { return false }, Deny: func() bool { return false }})
	if !errors.Is(err, ErrNoSessionBus) {
		t.Fatalf("without a bus: %v, want ErrNoSessionBus", err)
	}
	// A bus without a notification service.
	addr := desktoptest.SessionBus(t)
	_, err = NewDesktop(context.Background(), DesktopOptions{Address: addr, Approve: func() bool { return false }, Deny: func() bool { return false }})
	if !errors.Is(err, ErrNoSessionBus) || !strings.Contains(err.Error(), "notification service") {
		t.Fatalf("without a notification service: %v", err)
	}
}
