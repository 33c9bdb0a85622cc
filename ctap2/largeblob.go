package ctap2

import "context"

// largeBlobs is authenticatorLargeBlobs (CTAP 2.1 section 6.10). TODO(issue 4).
func (a *Authenticator) largeBlobs(ctx context.Context, params []byte) (any, error) {
	return nil, ErrInvalidCommand
}
