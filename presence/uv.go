package presence

import (
	"context"
	"sync/atomic"

	"github.com/vkey-dev/vkey/ctap2"
)

// Verifier is a built-in user verification method whose outcome a test
// harness sets (`vkey run --uv builtin`, the control API's PUT /uv), like
// the W3C WebAuthn virtual authenticator's isUserVerified. It implements
// ctap2.UserVerifier.
type Verifier struct {
	verified atomic.Bool
}

// NewVerifier returns a Verifier that verifies users until told otherwise.
func NewVerifier() *Verifier {
	v := &Verifier{}
	v.verified.Store(true)
	return v
}

// SetVerified sets the outcome of the next verifications.
func (v *Verifier) SetVerified(ok bool) { v.verified.Store(ok) }

// Verified reports the outcome verifications currently have.
func (v *Verifier) Verified() bool { return v.verified.Load() }

// VerifyUser implements ctap2.UserVerifier.
func (v *Verifier) VerifyUser(ctx context.Context, _ ctap2.PresenceRequest) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if v.verified.Load() {
		return nil
	}
	return ctap2.ErrUVFailed
}
