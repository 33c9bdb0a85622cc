package ctap2

import "context"

// nextAssertionState is kept between getAssertion and getNextAssertion.
type nextAssertionState struct{}

// getAssertion is authenticatorGetAssertion (CTAP 2.1 section 6.2). TODO(issue 2).
func (a *Authenticator) getAssertion(ctx context.Context, params []byte) (any, error) {
	return nil, ErrInvalidCommand
}

// getNextAssertion is authenticatorGetNextAssertion (CTAP 2.1 section 6.3). TODO(issue 2).
func (a *Authenticator) getNextAssertion(ctx context.Context, params []byte) (any, error) {
	return nil, ErrInvalidCommand
}
