package presence

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/godbus/dbus/v5"
	"github.com/vkey-dev/vkey/ctap2"
)

// The desktop prompt (`vkey run --presence desktop`) asks through the
// desktop's notification service: the freedesktop Desktop Notifications
// Specification 1.2 (org.freedesktop.Notifications on the session bus),
// which GNOME, KDE, XFCE, dunst and mako implement. A notification names
// the operation and the relying party and offers Approve and Deny actions.

// Names of the notification service (Desktop Notifications Specification,
// "D-BUS Protocol").
const (
	notifyService = "org.freedesktop.Notifications"
	notifyPath    = dbus.ObjectPath("/org/freedesktop/Notifications")
	notifyIface   = "org.freedesktop.Notifications"
)

// Reasons a NotificationClosed signal gives (same section).
const (
	closedExpired   = 1
	closedDismissed = 2
	closedByCall    = 3
)

// ErrNoSessionBus means no session D-Bus could be reached.
var ErrNoSessionBus = errors.New("no session D-Bus")

// DesktopOptions configure a Desktop prompt.
type DesktopOptions struct {
	// Address is the session bus's address (default: DBUS_SESSION_BUS_ADDRESS,
	// then $XDG_RUNTIME_DIR/bus).
	Address string
	// Approve and Deny answer the pending request (Broker.Approve and
	// Broker.Deny).
	Approve, Deny func() bool
	// Timeout is how long a notification stays up (DefaultTimeout if 0);
	// when the service reports it expired, the request is denied.
	Timeout time.Duration
}

// Desktop shows a notification for each presence request and answers it
// with the action the user invokes: Approve behaves as `vkey touch`, Deny
// and an expired notification as `vkey touch --deny`; a notification the
// user dismisses gives no answer, so the request still waits for a touch
// from elsewhere (`vkey touch`, the control API) until it times out.
type Desktop struct {
	opts    DesktopOptions
	conn    *dbus.Conn
	signals chan *dbus.Signal
	done    chan struct{}
	// Actions reports whether the service shows action buttons.
	Actions bool

	mu      sync.Mutex
	current uint32 // the notification of the pending request, or 0
	// early holds signals for a notification whose ID Notify has not yet
	// returned (the reply and the signals travel separately).
	early []*dbus.Signal
}

// SessionBusAddress returns the session bus's address, or an error
// matching ErrNoSessionBus that says why there is none.
func SessionBusAddress() (string, error) {
	if a := os.Getenv("DBUS_SESSION_BUS_ADDRESS"); a != "" {
		return a, nil
	}
	if dir := os.Getenv("XDG_RUNTIME_DIR"); dir != "" {
		p := filepath.Join(dir, "bus")
		if fi, err := os.Stat(p); err == nil && fi.Mode()&os.ModeSocket != 0 {
			return "unix:path=" + p, nil
		}
	}
	return "", fmt.Errorf("%w: DBUS_SESSION_BUS_ADDRESS is not set and $XDG_RUNTIME_DIR/bus does not exist", ErrNoSessionBus)
}

// NewDesktop connects to the session bus and checks that a notification
// service is there. Its error matches ErrNoSessionBus when there is no bus
// or no service on it.
func NewDesktop(ctx context.Context, opts DesktopOptions) (*Desktop, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	addr := opts.Address
	if addr == "" {
		var err error
		if addr, err = SessionBusAddress(); err != nil {
			return nil, err
		}
	}
	// No dbus.WithContext: it would close the connection when ctx ends,
	// and ctx only bounds this setup.
	conn, err := dbus.Connect(addr)
	if err != nil {
		return nil, fmt.Errorf("%w: connecting to %s: %v", ErrNoSessionBus, addr, err)
	}
	d := &Desktop{opts: opts, conn: conn, signals: make(chan *dbus.Signal, 16), done: make(chan struct{})}
	var caps []string
	if err := conn.Object(notifyService, notifyPath).CallWithContext(ctx, notifyIface+".GetCapabilities", 0).Store(&caps); err != nil {
		conn.Close()
		return nil, fmt.Errorf("%w: no desktop notification service (%s) answers on the session bus: %v", ErrNoSessionBus, notifyService, err)
	}
	for _, c := range caps {
		if c == "actions" {
			d.Actions = true
		}
	}
	if err := conn.AddMatchSignalContext(ctx, dbus.WithMatchObjectPath(notifyPath), dbus.WithMatchInterface(notifyIface)); err != nil {
		conn.Close()
		return nil, fmt.Errorf("subscribing to the notification service's signals: %w", err)
	}
	conn.Signal(d.signals)
	go d.listen()
	return d, nil
}

// Close disconnects from the bus.
func (d *Desktop) Close() error {
	err := d.conn.Close()
	<-d.done
	return err
}

// Ask shows a notification for req; the user's action answers it. Call it
// on ctap2.PresenceRequested (with the Broker in Touch mode). Errors from the
// service are returned: the request then waits for a touch from elsewhere.
func (d *Desktop) Ask(ctx context.Context, req ctap2.PresenceRequest) error {
	what := req.Command
	if req.RPID != "" {
		what += " for " + req.RPID
	}
	if req.UserName != "" {
		what += " (" + req.UserName + ")"
	}
	body := escapeMarkup(what) + "\n\nApprove to touch the key, Deny to refuse."
	actions := []string{"approve", "Approve", "deny", "Deny"}
	hints := map[string]dbus.Variant{
		"urgency":  dbus.MakeVariant(byte(2)), // critical: stays until answered
		"category": dbus.MakeVariant("device"),
	}
	// A notification service that does not answer must not hold the
	// request: the key still waits for a touch from elsewhere.
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var id uint32
	err := d.conn.Object(notifyService, notifyPath).CallWithContext(ctx, notifyIface+".Notify", 0,
		"vkey", uint32(0), "security-high", "Security key: touch requested", body,
		actions, hints, int32(d.opts.Timeout/time.Millisecond)).Store(&id)
	if err != nil {
		return fmt.Errorf("showing the desktop notification: %w", err)
	}
	d.mu.Lock()
	d.current = id
	early := d.early
	d.early = nil
	d.mu.Unlock()
	for _, sig := range early {
		d.handle(sig)
	}
	return nil
}

// Done withdraws the notification of the request that ended (call it on
// ctap2.PresenceAnswered and PresenceTimedOut): answered by a touch from elsewhere, timed out or
// cancelled by the client, it should not stay on the screen.
func (d *Desktop) Done() {
	d.mu.Lock()
	id := d.current
	d.current = 0
	d.early = nil
	d.mu.Unlock()
	if id == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = d.conn.Object(notifyService, notifyPath).CallWithContext(ctx, notifyIface+".CloseNotification", 0, id).Err
}

// listen answers the pending request from the service's signals.
func (d *Desktop) listen() {
	defer close(d.done)
	for sig := range d.signals {
		if sig.Path != notifyPath || len(sig.Body) < 2 || !d.fromService(sig.Sender) {
			continue
		}
		d.handle(sig)
	}
}

// handle acts on one signal of the notification service.
func (d *Desktop) handle(sig *dbus.Signal) {
	id, ok := sig.Body[0].(uint32)
	if !ok || id == 0 {
		return
	}
	d.mu.Lock()
	if id != d.current {
		if d.current == 0 {
			// Keep the latest few: other applications' notifications
			// close while vkey is idle, and their signals come here too.
			if len(d.early) == 16 {
				d.early = d.early[1:]
			}
			d.early = append(d.early, sig)
		}
		d.mu.Unlock()
		return
	}
	d.mu.Unlock()
	switch sig.Name {
	case notifyIface + ".ActionInvoked":
		switch action, _ := sig.Body[1].(string); action {
		case "approve":
			d.finish(id)
			d.opts.Approve()
		case "deny":
			d.finish(id)
			d.opts.Deny()
		}
		// "default" (a click on the body) or another key: no answer.
	case notifyIface + ".NotificationClosed":
		d.finish(id)
		switch reason, _ := sig.Body[1].(uint32); reason {
		case closedExpired:
			d.opts.Deny()
		case closedDismissed, closedByCall:
			// No answer: the request waits for a touch from elsewhere
			// until it times out.
		}
	}
}

// finish forgets notification id: it gets one answer.
func (d *Desktop) finish(id uint32) {
	d.mu.Lock()
	if d.current == id {
		d.current = 0
	}
	d.mu.Unlock()
}

// fromService reports whether sender owns the notification service name:
// another client of the bus cannot answer for the user by emitting a
// look-alike signal.
func (d *Desktop) fromService(sender string) bool {
	var owner string
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := d.conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.GetNameOwner", 0, notifyService).Store(&owner)
	return err == nil && owner == sender
}

// escapeMarkup makes s safe for a notification body, which servers may
// read as a subset of XML markup (specification, "Markup"): it escapes
// &, < and >, and replaces control characters (a relying party's ID comes
// from the request) with U+FFFD.
func escapeMarkup(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '&':
			b.WriteString("&amp;")
		case r == '<':
			b.WriteString("&lt;")
		case r == '>':
			b.WriteString("&gt;")
		case unicode.IsControl(r) || r == unicode.ReplacementChar:
			b.WriteRune(unicode.ReplacementChar)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
