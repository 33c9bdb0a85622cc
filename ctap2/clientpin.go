package ctap2

import "context"

// pinVolatile is the clientPIN state a power cycle resets. TODO(issue 4).
type pinVolatile struct{}

func (a *Authenticator) initPINVolatileLocked() {}

// clientPIN is authenticatorClientPIN (CTAP 2.1 section 6.5). TODO(issue 4).
func (a *Authenticator) clientPIN(ctx context.Context, params []byte) (any, error) {
	return nil, ErrInvalidCommand
}
