package ctap2

import (
	"context"
	"fmt"
	"time"
)

// resetWindow is how long after power-up authenticatorReset is allowed
// (CTAP 2.1 section 6.6: within 10 seconds).
const resetWindow = 10 * time.Second

// reset is authenticatorReset (CTAP 2.1 section 6.6).
func (a *Authenticator) reset(ctx context.Context, params []byte) (any, error) {
	if a.opts.Now().Sub(a.powerUp) > resetWindow {
		return nil, ErrNotAllowed
	}
	if err := a.requestPresence(ctx, PresenceRequest{Command: "reset"}); err != nil {
		return nil, err
	}
	// Reset wipes the PIN state and with it the persistent token
	// (persistent.go).
	if err := a.store.Reset(); err != nil {
		return nil, fmt.Errorf("resetting store: %w", err)
	}
	if err := a.ensureIdentity(); err != nil {
		return nil, err
	}
	powerUp := a.powerUp
	a.powerCycleLocked()
	a.powerUp = powerUp
	a.emit(Reset{})
	return nil, nil
}

// selection is authenticatorSelection (CTAP 2.1 section 6.9): the user
// picks this key by touching it.
func (a *Authenticator) selection(ctx context.Context, params []byte) (any, error) {
	return nil, a.requestPresence(ctx, PresenceRequest{Command: "selection"})
}
