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
	"github.com/vkey-dev/vkey/keystore"
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

// PresenceRequested emits presenceRequested; the daemon calls it from the
// presence broker's OnRequest, once the request is pending (so a harness
// that sees the event can answer it at once).
func (h *Hub) PresenceRequested(req ctap2.PresenceRequest) {
	h.Emit(Event{Type: EventPresenceRequested, Source: "ctap", Command: req.Command, RPID: req.RPID, UserName: req.UserName})
}

// PresenceAnswered emits presenceAnswered with the outcome of a request
// (the broker's OnAnswer).
func (h *Hub) PresenceAnswered(req ctap2.PresenceRequest, err error) {
	h.Emit(Event{Type: EventPresenceAnswered, Source: "ctap", Command: req.Command, RPID: req.RPID, Result: presenceResult(err)})
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

// eventStore is a keystore.Store that reports deleted credentials.
type eventStore struct {
	keystore.Store
	h *Hub
}

// WrapStore returns s reporting every deleted credential (credential
// management, replacement by a new registration, the control API) as a
// credentialDeleted event.
func (h *Hub) WrapStore(s keystore.Store) keystore.Store { return &eventStore{Store: s, h: h} }

// DeleteCredential implements keystore.Store.
func (s *eventStore) DeleteCredential(id []byte) error {
	var rpID string
	if s.h.Active() {
		if c, err := s.Store.Credential(id); err == nil {
			rpID = c.RPID
		}
	}
	if err := s.Store.DeleteCredential(id); err != nil {
		return err
	}
	s.h.Emit(Event{Type: EventCredentialDeleted, CredentialID: b64(id), RPID: rpID})
	return nil
}

// PutDiscoverable implements keystore.Store: the credentials a new one
// replaced are deleted ones too.
func (s *eventStore) PutDiscoverable(c *keystore.Credential) ([][]byte, error) {
	replaced, err := s.Store.PutDiscoverable(c)
	if err != nil {
		return nil, err
	}
	for _, id := range replaced {
		s.h.Emit(Event{Type: EventCredentialDeleted, CredentialID: b64(id), RPID: c.RPID})
	}
	return replaced, nil
}
