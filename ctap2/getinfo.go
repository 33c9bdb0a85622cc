package ctap2

import "context"

// getInfo is authenticatorGetInfo (CTAP 2.1 section 6.4). TODO(issue 2).
func (a *Authenticator) getInfo(ctx context.Context, params []byte) (any, error) {
	return nil, ErrInvalidCommand
}
