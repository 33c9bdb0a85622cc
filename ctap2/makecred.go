package ctap2

import "context"

// makeCredential is authenticatorMakeCredential (CTAP 2.1 section 6.1). TODO(issue 2).
func (a *Authenticator) makeCredential(ctx context.Context, params []byte) (any, error) {
	return nil, ErrInvalidCommand
}
