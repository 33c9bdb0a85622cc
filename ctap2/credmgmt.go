package ctap2

import "context"

// credMgmtVolatile is the enumeration state of credentialManagement. TODO(issue 4).
type credMgmtVolatile struct{}

// credentialManagement is authenticatorCredentialManagement (CTAP 2.1 section 6.8). TODO(issue 4).
func (a *Authenticator) credentialManagement(ctx context.Context, params []byte) (any, error) {
	return nil, ErrInvalidCommand
}
