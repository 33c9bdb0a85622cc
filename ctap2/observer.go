package ctap2

import (
	"context"
	"errors"
	"sync"
)

// Event is something that happened in the authenticator, told to its
// Observer as a typed value: one of CredentialCreated, CredentialAsserted,
// CredentialDeleted, CredentialUpdated, Reset, PINSet, PINChanged,
// PINBlocked, PresenceRequested, PresenceAnswered or PresenceTimedOut.
// Nothing outside this package needs to decode a CTAP message to learn
// what a command did.
type Event interface{ isEvent() }

// Observer is told of every Event. Observe runs on the goroutine of the
// command, after the authenticator has released its locks, in the order
// the events happened; it must return soon (a command waits for it) and
// may call the authenticator's methods. ctx is the context of the
// command: hid.UserPresenceNeeded(ctx) turns a PresenceRequested into
// CTAPHID KEEPALIVE(UPNEEDED).
type Observer interface {
	Observe(ctx context.Context, e Event)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(ctx context.Context, e Event)

// Observe implements Observer.
func (f ObserverFunc) Observe(ctx context.Context, e Event) { f(ctx, e) }

// Observers tells every one of its members, in order.
type Observers []Observer

// Observe implements Observer.
func (os Observers) Observe(ctx context.Context, e Event) {
	for _, o := range os {
		if o != nil {
			o.Observe(ctx, e)
		}
	}
}

// CredentialCreated: makeCredential or U2F register made a credential.
type CredentialCreated struct {
	// RPID is the relying party; empty for U2F, which names it only by
	// RPIDHash.
	RPID string
	// RPIDHash is SHA-256 of the RP ID (of the U2F application ID).
	RPIDHash [32]byte
	// CredentialID is the new credential's ID (the U2F key handle).
	CredentialID []byte
	// UserName is user.name of the request, when given.
	UserName string
	// Discoverable says the credential is stored (a resident key).
	Discoverable bool
	// SignCount is the counter in the authenticator data.
	SignCount uint32
	// U2F says the credential came from a CTAP1/U2F register.
	U2F bool
	// Extensions names, sorted, the extensions of the request that this
	// key implements (and its profile advertises): those it read and
	// acted on, even when acting meant ignoring an input, as
	// hmac-secret-mc without hmac-secret (CTAP 2.2 section 12.7). Names it
	// does not implement are left out: they are the request's text.
	Extensions []string
	// ExtensionOutputs names, sorted, the extensions it returned output
	// for: in the authenticator data, and largeBlobKey in the response
	// (CTAP 2.1 section 12.3).
	ExtensionOutputs []string
}

// CredentialAsserted: getAssertion, getNextAssertion or U2F authenticate
// signed with a credential.
type CredentialAsserted struct {
	RPID         string // empty for U2F
	RPIDHash     [32]byte
	CredentialID []byte
	SignCount    uint32
	UserPresent  bool
	UserVerified bool
	U2F          bool
	// Extensions and ExtensionOutputs are as in CredentialCreated.
	Extensions       []string
	ExtensionOutputs []string
}

// CredentialDeleted: a stored credential was deleted (credential
// management, replaced by a new registration for the same user, or the
// Go API the control API uses).
type CredentialDeleted struct {
	RPID         string
	CredentialID []byte
}

// CredentialUpdated: a stored credential's user information or properties
// changed.
type CredentialUpdated struct {
	RPID         string
	CredentialID []byte
}

// Reset: authenticatorReset erased every credential and the PIN.
type Reset struct{}

// PINSet: clientPIN setPIN set the first PIN.
type PINSet struct{}

// PINChanged: clientPIN changePIN replaced the PIN.
type PINChanged struct{}

// PINBlocked: a wrong PIN used up the retries; only a reset helps now
// (CTAP 2.1 section 6.5.5.7.2 step 6).
type PINBlocked struct{}

// PresenceRequested: a command waits for the user (a touch). It is told
// once the Presence can be answered (see PresenceWaiting), so whoever sees
// it may answer at once.
type PresenceRequested struct{ Request PresenceRequest }

// PresenceAnswered: a presence request ended other than by timing out;
// Err is nil when the user approved, ErrPresenceDenied when refused, or
// the context's error when the client cancelled.
type PresenceAnswered struct {
	Request PresenceRequest
	Err     error
}

// PresenceTimedOut: nobody answered a presence request in time.
type PresenceTimedOut struct{ Request PresenceRequest }

func (CredentialCreated) isEvent()  {}
func (CredentialAsserted) isEvent() {}
func (CredentialDeleted) isEvent()  {}
func (CredentialUpdated) isEvent()  {}
func (Reset) isEvent()              {}
func (PINSet) isEvent()             {}
func (PINChanged) isEvent()         {}
func (PINBlocked) isEvent()         {}
func (PresenceRequested) isEvent()  {}
func (PresenceAnswered) isEvent()   {}
func (PresenceTimedOut) isEvent()   {}

// events queues what a command did until it has released its locks.
type events struct {
	mu     sync.Mutex
	queued []Event
	// deliver serialises delivery, keeping the order of events.
	deliver sync.Mutex
}

// emit queues e; flushEvents delivers it.
func (a *Authenticator) emit(e Event) {
	if a.opts.Observer == nil {
		return
	}
	a.events.mu.Lock()
	a.events.queued = append(a.events.queued, e)
	a.events.mu.Unlock()
}

// flushEvents tells the observer what was queued. Callers hold none of
// the authenticator's locks.
func (a *Authenticator) flushEvents(ctx context.Context) {
	if a.opts.Observer == nil {
		return
	}
	a.events.deliver.Lock()
	defer a.events.deliver.Unlock()
	for {
		a.events.mu.Lock()
		q := a.events.queued
		a.events.queued = nil
		a.events.mu.Unlock()
		if len(q) == 0 {
			return
		}
		for _, e := range q {
			a.opts.Observer.Observe(ctx, e)
		}
	}
}

// waitingKey carries, in the context given to Presence.Request, what
// PresenceWaiting calls.
type waitingKey struct{}

// WithPresenceWaiting returns ctx carrying waiting, which PresenceWaiting
// calls (once) when a Presence given ctx waits for the user. The
// authenticator uses it to tell its Observer; a program that calls a
// Presence itself can too.
func WithPresenceWaiting(ctx context.Context, waiting func()) context.Context {
	var once sync.Once
	return context.WithValue(ctx, waitingKey{}, func() { once.Do(waiting) })
}

// PresenceWaiting tells the authenticator that the presence request whose
// context is ctx now waits for the user and can be answered: the
// Observer sees PresenceRequested. A Presence that waits for a person calls
// it once (a later call does nothing); one that answers at once does not.
func PresenceWaiting(ctx context.Context) {
	if f, ok := ctx.Value(waitingKey{}).(func()); ok {
		f()
	}
}

// askPresence asks opts.Presence, telling the observer when the request
// waits and how it ended. The caller holds none of the locks.
func (a *Authenticator) askPresence(ctx context.Context, req PresenceRequest) error {
	wctx := WithPresenceWaiting(ctx, func() {
		a.emit(PresenceRequested{Request: req})
		a.flushEvents(ctx)
	})
	err := a.opts.Presence.Request(wctx, req)
	if errors.Is(err, ErrPresenceTimeout) {
		a.emit(PresenceTimedOut{Request: req})
	} else {
		a.emit(PresenceAnswered{Request: req, Err: err})
	}
	a.flushEvents(ctx)
	return err
}
