package browser

import (
	"context"
	"errors"
	"fmt"

	"github.com/vkey-dev/vkey/ctap2"
)

// DOMException names a browser's navigator.credentials.create() and get()
// reject with (WebAuthn L3 sections 5.1.3 and 5.1.4).
const (
	// NotAllowedError: the user or the key refused, nothing matched, or
	// the ceremony timed out; browsers collapse most failures into it so
	// that a page learns nothing about the key.
	NotAllowedError = "NotAllowedError"
	// InvalidStateError: the key holds a credential of excludeCredentials.
	InvalidStateError = "InvalidStateError"
	// SecurityError: the origin may not use this RP ID.
	SecurityError = "SecurityError"
	// NotSupportedError: no requested algorithm or option is supported.
	NotSupportedError = "NotSupportedError"
	// ConstraintError: the key cannot meet authenticatorSelection.
	ConstraintError = "ConstraintError"
	// SyntaxError: an extension input is malformed (PRF, section 10.1.4).
	SyntaxError = "SyntaxError"
	// TypeError: the options are not well formed (WebIDL conversion).
	TypeError = "TypeError"
	// AbortError: the caller cancelled the ceremony.
	AbortError = "AbortError"
)

// Error is how a ceremony fails: Name is the DOMException a browser would
// throw, Message says why for people, and Err is the underlying cause (a
// ctap2.Status, a context error), if any.
type Error struct {
	Name    string
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s (%v)", e.Name, e.Message, e.Err)
	}
	return e.Name + ": " + e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// ErrorName is the DOMException name of err, or "" when err is not an *Error.
func ErrorName(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Name
	}
	return ""
}

func domError(name string, cause error, format string, args ...any) *Error {
	return &Error{Name: name, Message: fmt.Sprintf(format, args...), Err: cause}
}

// ctapError turns an authenticator or transport failure into the
// DOMException a browser reports for it. Where the spec is silent, it does
// what Chromium does: everything the user could cause is NotAllowedError.
func ctapError(op string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	switch {
	case errors.Is(err, context.Canceled):
		return domError(AbortError, err, "the ceremony was cancelled")
	case errors.Is(err, context.DeadlineExceeded):
		return domError(NotAllowedError, err, "the ceremony timed out")
	}
	var st ctap2.Status
	if errors.As(err, &st) {
		switch st {
		case ctap2.ErrCredentialExcluded:
			// Section 5.1.3 step 22 (authenticatorMakeCredential returned
			// InvalidStateError).
			return domError(InvalidStateError, err, "the authenticator already holds a credential of excludeCredentials")
		case ctap2.ErrUnsupportedAlgorithm:
			return domError(NotSupportedError, err, "the authenticator supports none of pubKeyCredParams")
		case ctap2.ErrOperationDenied, ctap2.ErrUserActionTimeout, ctap2.ErrActionTimeout, ctap2.ErrTimeout, ctap2.ErrKeepaliveCancel:
			return domError(NotAllowedError, err, "the user did not confirm %s on the authenticator", op)
		case ctap2.ErrNoCredentials:
			return domError(NotAllowedError, err, "the authenticator holds no credential for this request")
		case ctap2.ErrPINInvalid, ctap2.ErrPINBlocked, ctap2.ErrPINAuthBlocked, ctap2.ErrPINAuthInvalid, ctap2.ErrUVBlocked, ctap2.ErrUVInvalid:
			return domError(NotAllowedError, err, "user verification failed")
		case ctap2.ErrPUATRequired, ctap2.ErrPINNotSet:
			return domError(NotAllowedError, err, "the authenticator requires user verification: give the client its PIN (browser.Options.PIN, vkeytest.Options.PIN, or vkey webauthn --pin-file)")
		}
	}
	return domError(NotAllowedError, err, "%s failed", op)
}

// ceremonyError names a failure after how the ceremony ended: the caller
// cancelling it (parent done) is AbortError (section 5.6, "abort"), its
// timeout passing is NotAllowedError (section 5.1.3 step 23), whatever the
// authenticator answered to the cancellation.
func ceremonyError(parent, ctx context.Context, err error) error {
	switch {
	case parent.Err() != nil && !errors.Is(parent.Err(), context.DeadlineExceeded):
		return domError(AbortError, fmt.Errorf("%w: %w", parent.Err(), err), "the ceremony was cancelled")
	case ctx.Err() != nil:
		return domError(NotAllowedError, fmt.Errorf("%w: %w", ctx.Err(), err), "the ceremony timed out")
	}
	return err
}
