package presence

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/vkey-dev/vkey/ctap2"
)

// sessionBus starts a real `dbus-daemon --session` for the test and
// returns its address.
func sessionBus(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("dbus-daemon"); err != nil {
		t.Skip("dbus-daemon is not installed (make deps installs dbus)")
	}
	dir, err := os.MkdirTemp("", "vkdbus") // a short socket path
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	cmd := exec.Command("dbus-daemon", "--session", "--nofork", "--nopidfile", "--print-address",
		"--address=unix:path="+filepath.Join(dir, "bus"))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }) // only the daemon this test started
	addr := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		addr <- strings.TrimSpace(line)
	}()
	select {
	case a := <-addr:
		if a == "" {
			t.Fatal("dbus-daemon printed no address")
		}
		return a
	case <-time.After(10 * time.Second):
		t.Fatal("dbus-daemon did not start")
	}
	return ""
}

// notifyServer plays the desktop's notification service: it owns
// org.freedesktop.Notifications and records what it is asked to show.
type notifyServer struct {
	conn    *dbus.Conn
	mu      sync.Mutex
	nextID  uint32
	shown   chan shown
	closed  []uint32
	actions bool
}

type shown struct {
	id      uint32
	summary string
	body    string
	actions []string
	timeout int32
}

func (s *notifyServer) GetCapabilities() ([]string, *dbus.Error) {
	caps := []string{"body", "body-markup"}
	if s.actions {
		caps = append(caps, "actions")
	}
	return caps, nil
}

func (s *notifyServer) Notify(app string, replaces uint32, icon, summary, body string, actions []string, hints map[string]dbus.Variant, timeout int32) (uint32, *dbus.Error) {
	s.mu.Lock()
	s.nextID++
	id := s.nextID
	s.mu.Unlock()
	s.shown <- shown{id: id, summary: summary, body: body, actions: actions, timeout: timeout}
	return id, nil
}

func (s *notifyServer) CloseNotification(id uint32) *dbus.Error {
	s.mu.Lock()
	s.closed = append(s.closed, id)
	s.mu.Unlock()
	return nil
}

func (s *notifyServer) GetServerInformation() (string, string, string, string, *dbus.Error) {
	return "vkey-test", "vkey", "1", "1.2", nil
}

func (s *notifyServer) emit(t *testing.T, member string, args ...any) {
	t.Helper()
	if err := s.conn.Emit(notifyPath, notifyIface+"."+member, args...); err != nil {
		t.Fatal(err)
	}
}

func (s *notifyServer) wasClosed(id uint32) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.closed {
		if c == id {
			return true
		}
	}
	return false
}

func startNotifyServer(t *testing.T, addr string) *notifyServer {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	s := &notifyServer{conn: conn, shown: make(chan shown, 4), actions: true}
	if err := conn.Export(s, notifyPath, notifyIface); err != nil {
		t.Fatal(err)
	}
	reply, err := conn.RequestName(notifyService, dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("owning %s: %v (reply %v)", notifyService, err, reply)
	}
	return s
}

// desktopBroker is a Broker in Touch mode asking through a Desktop, wired as
// `vkey run --presence desktop` wires them.
func desktopBroker(t *testing.T, addr string, timeout time.Duration) *Broker {
	t.Helper()
	var b *Broker
	d, err := NewDesktop(context.Background(), DesktopOptions{Address: addr, Timeout: timeout,
		Approve: func() bool { return b.Approve() }, Deny: func() bool { return b.Deny() }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if !d.Actions {
		t.Fatal("the service offers actions, but Desktop did not see it")
	}
	b = New(Options{Mode: Touch, Timeout: timeout,
		OnRequest: func(ctx context.Context, req ctap2.PresenceRequest) {
			if err := d.Ask(ctx, req); err != nil {
				t.Errorf("Ask: %v", err)
			}
		},
		OnAnswer: func(ctap2.PresenceRequest, error) { d.Done() },
	})
	return b
}

func request(b *Broker, req ctap2.PresenceRequest) chan error {
	done := make(chan error, 1)
	go func() { done <- b.Request(context.Background(), req) }()
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
	addr := sessionBus(t)
	srv := startNotifyServer(t, addr)
	b := desktopBroker(t, addr, 5*time.Second)

	t.Run("approve", func(t *testing.T) {
		done := request(b, ctap2.PresenceRequest{Command: "makeCredential", RPID: "<b>evil</b>&co\x1b[31m", UserName: "alice"})
		n := <-srv.shown
		if !strings.Contains(n.body, "makeCredential for &lt;b&gt;evil&lt;/b&gt;&amp;co\uFFFD[31m (alice)") {
			t.Errorf("body %q: the RP ID is not escaped", n.body)
		}
		if strings.Join(n.actions, ",") != "approve,Approve,deny,Deny" || n.timeout != 5000 {
			t.Errorf("actions %q, timeout %d ms", n.actions, n.timeout)
		}
		srv.emit(t, "ActionInvoked", n.id, "approve")
		if err := waitAnswer(t, done); err != nil {
			t.Fatalf("Approve gave %v, want a touch", err)
		}
	})
	t.Run("deny", func(t *testing.T) {
		done := request(b, ctap2.PresenceRequest{Command: "getAssertion", RPID: "example.org"})
		n := <-srv.shown
		srv.emit(t, "ActionInvoked", n.id, "deny")
		if err := waitAnswer(t, done); !errors.Is(err, ctap2.ErrPresenceDenied) {
			t.Fatalf("Deny gave %v, want %v", err, ctap2.ErrPresenceDenied)
		}
	})
	t.Run("expired", func(t *testing.T) {
		done := request(b, ctap2.PresenceRequest{Command: "getAssertion", RPID: "example.org"})
		n := <-srv.shown
		srv.emit(t, "NotificationClosed", n.id, uint32(closedExpired))
		if err := waitAnswer(t, done); !errors.Is(err, ctap2.ErrPresenceDenied) {
			t.Fatalf("an expired notification gave %v, want %v", err, ctap2.ErrPresenceDenied)
		}
	})
	t.Run("dismissed then touched", func(t *testing.T) {
		done := request(b, ctap2.PresenceRequest{Command: "getAssertion", RPID: "example.org"})
		n := <-srv.shown
		srv.emit(t, "NotificationClosed", n.id, uint32(closedDismissed))
		srv.emit(t, "ActionInvoked", n.id, "approve") // too late: it was closed
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
		n := <-srv.shown
		b.Approve()
		if err := waitAnswer(t, done); err != nil {
			t.Fatal(err)
		}
		if !srv.wasClosed(n.id) {
			t.Error("the notification stayed up after the request was answered by vkey touch")
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
		n := <-srv.shown
		if err := other.Emit(notifyPath, notifyIface+".ActionInvoked", n.id, "approve"); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			t.Fatalf("a signal from another client answered the request: %v", err)
		case <-time.After(300 * time.Millisecond):
		}
		srv.emit(t, "ActionInvoked", n.id, "deny")
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
	addr := sessionBus(t)
	_, err = NewDesktop(context.Background(), DesktopOptions{Address: addr, Approve: func() bool { return false }, Deny: func() bool { return false }})
	if !errors.Is(err, ErrNoSessionBus) || !strings.Contains(err.Error(), "notification service") {
		t.Fatalf("without a notification service: %v", err)
	}
}
