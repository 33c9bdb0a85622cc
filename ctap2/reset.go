package ctap2

import "context"

// reset is authenticatorReset (CTAP 2.1 section 6.6). TODO(issue 2).
func (a *Authenticator) reset(ctx context.Context, params []byte) (any, error) {
	return nil, ErrInvalidCommand
}

// selection is authenticatorSelection (CTAP 2.1 section 6.9). TODO(issue 2).
func (a *Authenticator) selection(ctx context.Context, params []byte) (any, error) {
	return nil, ErrInvalidCommand
}
