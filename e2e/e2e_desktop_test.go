package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vkey-dev/vkey/internal/clientsummary"
	"github.com/vkey-dev/vkey/internal/desktoptest"
)

// TestE2EDesktopPresence: `vkey run --presence desktop` asks the desktop's
// notification service (played by the test on a real session bus) when
// fido2-cred makes a credential; Approve lets it through, Deny refuses it.
func TestE2EDesktopPresence(t *testing.T) {
	clientsummary.Record(t, "freedesktop notifications (played by the test) + fido2-cred", "vkey run --presence desktop: Approve makes the credential, Deny refuses")
	needTool(t, "fido2-cred")
	addr := desktoptest.SessionBus(t)
	srv := desktoptest.NewServer(t, addr)
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", addr)
	k := startKey(t, "--transport", "pty", "--ephemeral", "--presence", "desktop", "--name", "desk")
	if !strings.Contains(k.Output.String(), "(presence: desktop)") {
		t.Fatalf("vkey run did not start with the desktop prompt:\n%s", k.Output.String())
	}
	for _, c := range []struct {
		action string
		ok     bool
	}{{"approve", true}, {"deny", false}} {
		in := fmt.Sprintf("%s\ndesk.example\nalice\n%s\n", randomB64(32), randomB64(16))
		done := make(chan error, 1)
		go func() { _, err := tool(t, in, "fido2-cred", "-M", k.Where, "es256"); done <- err }()
		n := srv.Next(t)
		if n.App != "vkey" || !strings.Contains(n.Body, "makeCredential for desk.example") {
			t.Errorf("notification %+v does not name the operation and the RP", n)
		}
		srv.Invoke(t, n.ID, c.action)
		select {
		case err := <-done:
			if c.ok && err != nil {
				t.Fatalf("after Approve: %v", err)
			}
			if !c.ok && (err == nil || !strings.Contains(err.Error(), "FIDO_ERR_OPERATION_DENIED")) {
				t.Fatalf("after Deny: %v, want FIDO_ERR_OPERATION_DENIED", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("fido2-cred did not finish after %s", c.action)
		}
	}
}

// TestE2EDesktopPresenceWithoutBus: without a session bus, vkey run says so
// at start, names the alternative, and waits for vkey touch.
func TestE2EDesktopPresenceWithoutBus(t *testing.T) {
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "")
	k := startKey(t, "--transport", "pty", "--ephemeral", "--presence", "desktop", "--name", "nodesk")
	out := k.Output.String()
	if !strings.Contains(out, "no session D-Bus") || !strings.Contains(out, "vkey touch") || !strings.Contains(out, "(presence: touch)") {
		t.Fatalf("vkey run's start does not say there is no bus and what to do:\n%s", out)
	}
}
