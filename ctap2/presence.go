package ctap2

import (
	"context"
	"errors"
)

// PresenceRequest describes what the user is asked to approve.
type PresenceRequest struct {
	// Command is the CTAP command asking, for example "makeCredential".
	Command string
	// RPID is the relying party, when there is one.
	RPID string
	// UserName is the account, when known.
	UserName string
}

// Presence asks for user presence (a touch). Request blocks until the user
// approves (nil), refuses (ErrPresenceDenied), the request times out
// (ErrPresenceTimeout) or ctx is done (ctx.Err(): the client cancelled).
type Presence interface {
	Request(ctx context.Context, req PresenceRequest) error
}

// Errors a Presence returns.
var (
	ErrPresenceDenied  = errors.New("user presence denied")
	ErrPresenceTimeout = errors.New("user presence timed out")
)

// PresenceFunc adapts a function to Presence.
type PresenceFunc func(ctx context.Context, req PresenceRequest) error

// Request implements Presence.
func (f PresenceFunc) Request(ctx context.Context, req PresenceRequest) error { return f(ctx, req) }

// AutoPresence approves every request at once (CI).
type AutoPresence struct{}

// Request implements Presence.
func (AutoPresence) Request(ctx context.Context, _ PresenceRequest) error { return ctx.Err() }

// denyPresence refuses every request.
type denyPresence struct{}

// Request implements Presence.
func (denyPresence) Request(ctx context.Context, _ PresenceRequest) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return ErrPresenceDenied
}

// presenceStatus maps a Presence outcome to the CTAP status (CTAP 2.1
// section 6.1.2 step 14 and section 8.2).
func presenceStatus(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return ErrKeepaliveCancel
	case errors.Is(err, ErrPresenceTimeout):
		return ErrUserActionTimeout
	case errors.Is(err, ErrPresenceDenied):
		return ErrOperationDenied
	}
	return ErrOperationDenied
}
