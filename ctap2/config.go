package ctap2

import "context"

// config is authenticatorConfig (CTAP 2.1 section 6.11). TODO(issue 4).
func (a *Authenticator) config(ctx context.Context, params []byte) (any, error) {
	return nil, ErrInvalidCommand
}
