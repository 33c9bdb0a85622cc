// Package desktoptest plays a desktop for tests: it starts a real
// `dbus-daemon --session` and serves the freedesktop notification service
// (org.freedesktop.Notifications) on it, recording each notification and
// letting the test invoke its actions or close it.
package desktoptest

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

// Names of the notification service (Desktop Notifications Specification 1.2).
const (
	Service = "org.freedesktop.Notifications"
	Path    = dbus.ObjectPath("/org/freedesktop/Notifications")
	Iface   = "org.freedesktop.Notifications"
)

// Reasons of NotificationClosed.
const (
	ClosedExpired   = uint32(1)
	ClosedDismissed = uint32(2)
	ClosedByCall    = uint32(3)
)

// SessionBus starts a `dbus-daemon --session` for the test (stopped when it
// ends) and returns its address. The test is skipped when dbus-daemon is
// not installed.
func SessionBus(t testing.TB) string {
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

// Notification is one Notify call the server received.
type Notification struct {
	ID      uint32
	App     string
	Summary string
	Body    string
	Actions []string
	Timeout int32
}

// Server is the notification service.
type Server struct {
	conn *dbus.Conn
	// Shown receives each notification shown.
	Shown chan Notification

	mu     sync.Mutex
	nextID uint32
	closed []uint32
	// answerFirst, when set, is an action the server invokes before
	// Notify returns, so the signal reaches the client before the ID does.
	answerFirst string
}

// AnswerBeforeReply makes the server invoke action on each later
// notification before its Notify call returns ("" stops it).
func (s *Server) AnswerBeforeReply(action string) {
	s.mu.Lock()
	s.answerFirst = action
	s.mu.Unlock()
}

// NewServer connects to the bus at addr and owns the service name.
func NewServer(t testing.TB, addr string) *Server {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	s := &Server{conn: conn, Shown: make(chan Notification, 8)}
	if err := conn.Export(s, Path, Iface); err != nil {
		t.Fatal(err)
	}
	reply, err := conn.RequestName(Service, dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("owning %s: %v (reply %v)", Service, err, reply)
	}
	return s
}

// GetCapabilities is the service's method: it shows bodies, markup and actions.
func (s *Server) GetCapabilities() ([]string, *dbus.Error) {
	return []string{"body", "body-markup", "actions"}, nil
}

// Notify is the service's method: it records the notification.
func (s *Server) Notify(app string, replaces uint32, icon, summary, body string, actions []string, hints map[string]dbus.Variant, timeout int32) (uint32, *dbus.Error) {
	s.mu.Lock()
	s.nextID++
	id := s.nextID
	first := s.answerFirst
	s.mu.Unlock()
	s.Shown <- Notification{ID: id, App: app, Summary: summary, Body: body, Actions: actions, Timeout: timeout}
	if first != "" {
		_ = s.conn.Emit(Path, Iface+".ActionInvoked", id, first)
	}
	return id, nil
}

// CloseNotification is the service's method: it records the call.
func (s *Server) CloseNotification(id uint32) *dbus.Error {
	s.mu.Lock()
	s.closed = append(s.closed, id)
	s.mu.Unlock()
	return nil
}

// GetServerInformation is the service's method.
func (s *Server) GetServerInformation() (string, string, string, string, *dbus.Error) {
	return "vkey-test", "vkey", "1", "1.2", nil
}

// Next waits for the next notification.
func (s *Server) Next(t testing.TB) Notification {
	t.Helper()
	select {
	case n := <-s.Shown:
		return n
	case <-time.After(15 * time.Second):
		t.Fatal("no notification was shown")
		return Notification{}
	}
}

// Invoke emits ActionInvoked for notification id, as a click on a button.
func (s *Server) Invoke(t testing.TB, id uint32, action string) {
	t.Helper()
	if err := s.conn.Emit(Path, Iface+".ActionInvoked", id, action); err != nil {
		t.Fatal(err)
	}
}

// Close emits NotificationClosed for notification id with reason.
func (s *Server) Close(t testing.TB, id, reason uint32) {
	t.Helper()
	if err := s.conn.Emit(Path, Iface+".NotificationClosed", id, reason); err != nil {
		t.Fatal(err)
	}
}

// WasClosed reports whether a client called CloseNotification for id.
func (s *Server) WasClosed(id uint32) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.closed {
		if c == id {
			return true
		}
	}
	return false
}
