// Package control is the control API of a running vkey: HTTP with JSON on
// an owner-only unix socket (and, if asked, on a loopback TCP address),
// for what a test harness needs and a hardware key cannot offer: answering
// presence requests, power cycling, adding, listing and removing
// credentials and setting their properties, and a stream of events. Its
// shape follows the W3C WebAuthn virtual authenticator WebDriver commands
// (WebAuthn Level 3 section 11). docs/control-api.md documents every
// endpoint.
package control

import (
	"context"
	"encoding/base64"
	"errors"
	"sync"
	"time"

	"github.com/vkey-dev/vkey/ctap2"
)

// Event types of the GET /events stream.
const (
	EventCredentialAdded    = "credentialAdded"
	EventCredentialAsserted = "credentialAsserted"
	EventCredentialDeleted  = "credentialDeleted"
	EventReset              = "reset"
	EventPresenceRequested  = "presenceRequested"
	EventPresenceAnswered   = "presenceAnswered"
	EventPowerCycled        = "powerCycled"
	EventUVSet              = "uvSet"
)

// Event is one line of the GET /events stream. Binary values are
// base64url without padding, as in WebDriver.
type Event struct {
	Type string    `json:"type"`
	Time time.Time `json:"time"`
	// Source is "ctap" (a client's command) or "control" (this API).
	Source       string `json:"source,omitempty"`
	CredentialID string `json:"credentialId,omitempty"`
	RPID         string `json:"rpId,omitempty"`
	// RPIDHash names the relying party of a U2F command, which carries
	// only the SHA-256 of its application ID.
	RPIDHash     string `json:"rpIdHash,omitempty"`
	UserName     string `json:"userName,omitempty"`
	Discoverable *bool  `json:"isResidentCredential,omitempty"`
	// SignCount is the counter in the authenticator data.
	SignCount    *uint32 `json:"signCount,omitempty"`
	UserPresent  *bool   `json:"userPresent,omitempty"`
	UserVerified *bool   `json:"userVerified,omitempty"`
	// Extensions names, sorted, the request's extensions the key acted
	// on (only ones it implements), and ExtensionOutputs those it
	// answered with output (ctap2.CredentialCreated).
	Extensions       []string `json:"extensions,omitempty"`
	ExtensionOutputs []string `json:"extensionOutputs,omitempty"`
	// Command is the CTAP command asking for presence.
	Command string `json:"command,omitempty"`
	// Result is a presence answer: approved, denied, timeout or cancelled.
	Result string `json:"result,omitempty"`
}

// subscriberBuffer is how many events a slow reader may lag behind before
// it misses events.
const subscriberBuffer = 256

// Hub fans events out to the readers of GET /events. It is safe for
// concurrent use; with no reader, Emit costs a lock and nothing more.
type Hub struct {
	now func() time.Time

	mu   sync.Mutex
	subs map[chan Event]struct{}
}

// NewHub returns a hub with no subscribers.
func NewHub() *Hub { return &Hub{now: time.Now, subs: map[chan Event]struct{}{}} }

// Active reports whether anyone listens.
func (h *Hub) Active() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs) > 0
}

// Emit sends e to every subscriber (stamping its time); a subscriber whose
// buffer is full misses it.
func (h *Hub) Emit(e Event) {
	if e.Time.IsZero() {
		e.Time = h.now().UTC()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- e:
		default:
		}
	}
}

// Subscribe returns a channel of events and the function that ends the
// subscription (and closes the channel).
func (h *Hub) Subscribe() (<-chan Event, func()) {
	ch := make(chan Event, subscriberBuffer)
	h.mu.Lock()
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			h.mu.Lock()
			delete(h.subs, ch)
			h.mu.Unlock()
			close(ch)
		})
	}
}

// Observe implements ctap2.Observer: what the authenticator did becomes
// events of the stream. Credentials the control API adds are reported by
// the API itself (source "control").
func (h *Hub) Observe(_ context.Context, e ctap2.Event) {
	if !h.Active() {
		return
	}
	switch e := e.(type) {
	case ctap2.CredentialCreated:
		ev := Event{Type: EventCredentialAdded, Source: "ctap", CredentialID: b64(e.CredentialID), UserName: e.UserName,
			Discoverable: &e.Discoverable, SignCount: &e.SignCount, Extensions: e.Extensions, ExtensionOutputs: e.ExtensionOutputs}
		ev.RPID, ev.RPIDHash = rpNames(e.RPID, e.RPIDHash, e.U2F)
		h.Emit(ev)
	case ctap2.CredentialAsserted:
		ev := Event{Type: EventCredentialAsserted, Source: "ctap", CredentialID: b64(e.CredentialID),
			SignCount: &e.SignCount, UserPresent: &e.UserPresent, UserVerified: &e.UserVerified,
			Extensions: e.Extensions, ExtensionOutputs: e.ExtensionOutputs}
		ev.RPID, ev.RPIDHash = rpNames(e.RPID, e.RPIDHash, e.U2F)
		h.Emit(ev)
	case ctap2.CredentialDeleted:
		h.Emit(Event{Type: EventCredentialDeleted, CredentialID: b64(e.CredentialID), RPID: e.RPID})
	case ctap2.Reset:
		h.Emit(Event{Type: EventReset, Source: "ctap"})
	case ctap2.PresenceRequested:
		// Told once the request is pending, so a harness that sees the
		// event can answer it at once.
		h.Emit(Event{Type: EventPresenceRequested, Source: "ctap", Command: e.Request.Command, RPID: e.Request.RPID, UserName: e.Request.UserName})
	case ctap2.PresenceAnswered:
		h.Emit(Event{Type: EventPresenceAnswered, Source: "ctap", Command: e.Request.Command, RPID: e.Request.RPID, Result: presenceResult(e.Err)})
	case ctap2.PresenceTimedOut:
		h.Emit(Event{Type: EventPresenceAnswered, Source: "ctap", Command: e.Request.Command, RPID: e.Request.RPID, Result: "timeout"})
	}
}

// rpNames says how an event names its relying party: by RP ID, or, for
// U2F, which carries only the SHA-256 of its application ID, by that hash.
func rpNames(rpID string, hash [32]byte, u2f bool) (string, string) {
	if u2f {
		return "", b64(hash[:])
	}
	return rpID, ""
}

func presenceResult(err error) string {
	switch {
	case err == nil:
		return "approved"
	case errors.Is(err, ctap2.ErrPresenceTimeout):
		return "timeout"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "cancelled"
	}
	return "denied"
}

// b64 encodes binary values as WebDriver does: base64url without padding.
func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
