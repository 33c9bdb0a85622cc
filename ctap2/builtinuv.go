package ctap2

import (
	"context"
	"errors"
	"fmt"
)

// UserVerifier is a built-in user verification method (CTAP 2.1 section
// 6.5.1, "built-in UV"), such as a fingerprint reader. vkey's is the one a
// test harness sets through the control API (vkey run --uv builtin).
type UserVerifier interface {
	// VerifyUser returns nil when the user is verified, ErrUVFailed when
	// not, or the context's error when the client cancelled.
	VerifyUser(ctx context.Context, req PresenceRequest) error
}

// ErrUVFailed is what a UserVerifier returns when the user was not verified.
var ErrUVFailed = errors.New("user verification failed")

// maxUVRetries is uvRetries on a new authenticator (CTAP 2.1 section 6.5.2.2).
const maxUVRetries = 8

// builtInUV runs the built-in user verification (performBuiltInUv, CTAP 2.1
// section 6.5.5.x): CTAP2_ERR_UV_INVALID on a failure, CTAP2_ERR_UV_BLOCKED
// once the retries are gone, CTAP2_ERR_KEEPALIVE_CANCEL if the client
// cancelled. The retry count lives in the volatile state: a power cycle
// restores it, as a real key's persistent count would after a PIN entry.
func (a *Authenticator) builtInUV(ctx context.Context, req PresenceRequest) error {
	if a.opts.UserVerifier == nil {
		return ErrInvalidOption
	}
	if a.volatile.uvFailures >= maxUVRetries {
		return ErrUVBlocked
	}
	err := a.opts.UserVerifier.VerifyUser(ctx, req)
	switch {
	case err == nil:
		a.volatile.uvFailures = 0
		return nil
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return ErrKeepaliveCancel
	case errors.Is(err, ErrUVFailed):
		a.volatile.uvFailures++
		if a.volatile.uvFailures >= maxUVRetries {
			return ErrUVBlocked
		}
		return ErrUVInvalid
	}
	return fmt.Errorf("built-in user verification: %w", err)
}

// uvRetries is getUVRetries' answer.
func (a *Authenticator) uvRetries() int { return maxUVRetries - a.volatile.uvFailures }

// getTokenUsingUV is getPinUvAuthTokenUsingUvWithPermissions (CTAP 2.1
// section 6.5.5.7.3).
func (a *Authenticator) getTokenUsingUV(ctx context.Context, proto PINProtocol, req *clientPINRequest) (any, error) {
	if req.KeyAgreement == nil || req.Permissions == nil {
		return nil, ErrMissingParameter
	}
	perms := Permission(*req.Permissions)
	if perms == PermPersistentCredMgmtRO {
		return nil, ErrUnauthorizedPermission // this key gives the persistent token for the PIN only
	}
	if err := checkPermissions(perms); err != nil {
		return nil, err
	}
	shared, err := SharedSecret(proto, a.volatile.pin.keyAgreement, req.KeyAgreement)
	if err != nil {
		return nil, err
	}
	rpID := ""
	if req.RPID != nil {
		rpID = *req.RPID
	}
	if err := a.builtInUV(ctx, PresenceRequest{Command: "getPinUvAuthToken", RPID: rpID}); err != nil {
		return nil, err
	}
	return a.issueToken(proto, shared, perms, rpID)
}
