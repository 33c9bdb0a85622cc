// Package vkeytest is the WebAuthn test kit: in a Go test, a browser and a
// real (in-process) FIDO2 security key between a relying party's options
// JSON and the response JSON it verifies.
//
//	kit := vkeytest.New(t)
//	resp, err := kit.Create(optionsJSON, "https://example.com")
//	// send resp to the relying party's finish-registration handler
//
// The key is vkey's authenticator, not a fake: CTAP 2.1 with PINs, user
// verification, signature counters, extensions (PRF, largeBlob, credBlob,
// credProtect) and attestation (none, packed); the browser side is package
// ctap2/browser, which checks origins and RP IDs and fails with the
// DOMException names a browser throws.
//
// The key is assembled by vkey.New: in memory, on an in-process pipe.
package vkeytest

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/vkey-dev/vkey"
	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/ctap2/browser"
	"github.com/vkey-dev/vkey/keystore"
)

// Options configure a kit. The zero value is a key without PIN that
// approves every touch and attests with packed, and a browser whose user
// knows no PIN.
type Options struct {
	// PIN is set on the key, and the browser's user gives it when user
	// verification is asked for.
	PIN string
	// BrowserPIN, if not empty, is what the browser's user types instead
	// of PIN (a wrong PIN, say).
	BrowserPIN string
	// BuiltInUV gives the key built-in user verification (a fingerprint
	// reader); SetUV chooses its outcome.
	BuiltInUV bool
	// Attestation is the key's attestation format: none, packed-self,
	// packed (default) or tpm (needs DeviceKeys from a TPM).
	Attestation ctap2.AttestationFormat
	// Syncable makes syncable passkeys: backup eligible (the BE flag).
	Syncable bool
	// DeviceKeys makes the device-bound keys: a TPM's
	// (tpm.TPM.KeyProvider()), for tpm attestation; nil for software keys.
	DeviceKeys keystore.KeyProvider
	// Timeout bounds each ceremony (default: the options' timeout, or 5
	// minutes).
	Timeout time.Duration
}

// Kit is an in-process security key and the browser that talks to it.
type Kit struct {
	tb      testing.TB
	key     *vkey.Key
	browser *browser.Client
	timeout time.Duration
}

// New makes a kit for a test. tb may be nil outside a test (an Example):
// then a key that cannot be made panics instead of failing the test.
func New(tb testing.TB, opts ...Options) *Kit {
	if tb != nil {
		tb.Helper()
	}
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	k, err := NewKit(o)
	if err != nil {
		if tb == nil {
			panic(err)
		}
		tb.Fatalf("vkeytest: %v", err)
	}
	k.tb = tb
	return k
}

// NewKit is New without a test: it returns the error.
func NewKit(o Options) (*Kit, error) {
	eo := vkey.Options{PIN: o.PIN, BuiltInUV: o.BuiltInUV, Attestation: o.Attestation, DeviceKeys: o.DeviceKeys}
	if o.Syncable {
		eo.Passkeys = ctap2.Syncable
	}
	key, err := vkey.New(context.Background(), eo)
	if err != nil {
		return nil, fmt.Errorf("making the key: %w", err)
	}
	pin := o.PIN
	if o.BrowserPIN != "" {
		pin = o.BrowserPIN
	}
	return &Kit{
		key:     key,
		browser: browser.New(key.Direct(), browser.Options{PIN: pin}),
		timeout: o.Timeout,
	}, nil
}

// optionsJSON accepts the options as the caller has them: JSON bytes or
// string, or a value that marshals to it (go-webauthn's
// *protocol.CredentialCreation, for one).
func optionsJSON(options any) ([]byte, error) {
	switch v := options.(type) {
	case []byte:
		return v, nil
	case string:
		return []byte(v), nil
	case json.RawMessage:
		return v, nil
	}
	b, err := json.Marshal(options)
	if err != nil {
		return nil, fmt.Errorf("vkeytest: encoding the options: %w", err)
	}
	return b, nil
}

func (k *Kit) context() (context.Context, context.CancelFunc) {
	if k.timeout > 0 {
		return context.WithTimeout(context.Background(), k.timeout)
	}
	// The browser bounds the ceremony by the options' timeout.
	return context.Background(), func() {}
}

// Create registers a credential as navigator.credentials.create() on a
// page of origin does, and returns the RegistrationResponseJSON. Failures
// are *browser.Error values named as DOMExceptions (browser.ErrorName).
func (k *Kit) Create(options any, origin string) ([]byte, error) {
	resp, err := k.CreateResponse(options, origin)
	if err != nil {
		return nil, err
	}
	return resp.JSON(), nil
}

// CreateResponse is Create returning the response as a struct.
func (k *Kit) CreateResponse(options any, origin string) (*browser.RegistrationResponse, error) {
	b, err := optionsJSON(options)
	if err != nil {
		return nil, err
	}
	ctx, cancel := k.context()
	defer cancel()
	return k.browser.Create(ctx, b, origin)
}

// Get signs in as navigator.credentials.get() on a page of origin does, and
// returns the AuthenticationResponseJSON.
func (k *Kit) Get(options any, origin string) ([]byte, error) {
	resp, err := k.GetResponse(options, origin)
	if err != nil {
		return nil, err
	}
	return resp.JSON(), nil
}

// GetResponse is Get returning the response as a struct.
func (k *Kit) GetResponse(options any, origin string) (*browser.AuthenticationResponse, error) {
	b, err := optionsJSON(options)
	if err != nil {
		return nil, err
	}
	ctx, cancel := k.context()
	defer cancel()
	return k.browser.Get(ctx, b, origin)
}

// Browser is the WebAuthn client (for CreateInFrame, parsed options, ...).
func (k *Kit) Browser() *browser.Client { return k.browser }

// Authenticator is the key itself.
func (k *Kit) Authenticator() *ctap2.Authenticator { return k.key.Authenticator }

// SetPresence sets the user's answer to touch requests: true approves
// (the default), false refuses (the browser then says NotAllowedError).
func (k *Kit) SetPresence(approve bool) { k.key.SetPresence(approve) }

// SetUV sets the outcome of the key's built-in user verification; it
// fails the test on a kit made without Options.BuiltInUV.
func (k *Kit) SetUV(verified bool) {
	if !k.key.SetUV(verified) && k.tb != nil {
		k.tb.Helper()
		k.tb.Fatal("vkeytest: SetUV on a key without built-in user verification (Options.BuiltInUV)")
	}
}

// PowerCycle unplugs and replugs the key: tokens and PIN retry state of
// this power-up are forgotten, credentials stay.
func (k *Kit) PowerCycle() { k.key.Authenticator.PowerCycle() }

// Credentials lists the key's credentials, as the control API's GET
// /credentials does.
func (k *Kit) Credentials() ([]ctap2.VirtualCredential, error) {
	return k.key.Authenticator.VirtualCredentials()
}

// AddCredential stores a credential (the WebDriver "Add Credential"
// command) and returns its ID.
func (k *Kit) AddCredential(c ctap2.VirtualCredential) ([]byte, error) {
	return k.key.Authenticator.AddCredential(c)
}

// RemoveCredential deletes a credential.
func (k *Kit) RemoveCredential(id []byte) error { return k.key.Authenticator.RemoveCredential(id) }

// SetSignCount sets a credential's signature counter: the next assertion
// reports more than n.
func (k *Kit) SetSignCount(id []byte, n uint32) error {
	return k.key.Authenticator.SetCredentialProperties(id, &n, nil, nil)
}
