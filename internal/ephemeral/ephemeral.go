// Package ephemeral assembles an in-process vkey that lives in memory: an
// authenticator over a memory store, a presence answer a test sets, an
// optional PIN and built-in user verification. The WebAuthn test kit and
// `vkey webauthn --ephemeral` use it.
//
// It is a stopgap: once the root package vkey assembles keys (vkey.New,
// issue 15), New becomes a thin call to it, and its callers keep their API.
package ephemeral

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/ctap2/client"
	"github.com/vkey-dev/vkey/internal/presence"
	"github.com/vkey-dev/vkey/keystore"
)

// Options configure a key. The zero value is a key with no PIN and no
// built-in UV that approves every touch, attests with packed.
type Options struct {
	// PIN, if not empty, is set on the new key (CTAP 2.1 clientPIN setPIN).
	PIN string
	// BuiltInUV gives the key a built-in user verification method whose
	// outcome SetUV chooses (default: verified).
	BuiltInUV bool
	// Attestation is the attestation format (default packed).
	Attestation ctap2.AttestationFormat
	// Passkeys is the kind of new credentials (default device-bound).
	Passkeys ctap2.PasskeyKind
	// Store holds the key's state (default: a new memory store).
	Store keystore.Store
	// DeviceKeys makes device-bound keys (a TPM); nil for software keys.
	DeviceKeys keystore.KeyProvider
}

// Key is an in-process authenticator and what controls it.
type Key struct {
	// Authenticator is the CTAP2 authenticator.
	Authenticator *ctap2.Authenticator
	// Store is its memory.
	Store keystore.Store
	// Verifier is the built-in UV, nil without one.
	Verifier *presence.Verifier

	deny atomic.Bool
}

// New makes a key.
func New(ctx context.Context, opts Options) (*Key, error) {
	k := &Key{Store: opts.Store}
	if k.Store == nil {
		k.Store = keystore.NewMemory(0)
	}
	co := ctap2.Options{
		Store:       k.Store,
		DeviceKeys:  opts.DeviceKeys,
		Presence:    ctap2.PresenceFunc(k.presence),
		Attestation: opts.Attestation,
		Passkeys:    opts.Passkeys,
	}
	if opts.BuiltInUV {
		k.Verifier = presence.NewVerifier()
		co.UserVerifier = k.Verifier
	}
	a, err := ctap2.New(co)
	if err != nil {
		return nil, err
	}
	k.Authenticator = a
	if opts.PIN != "" {
		info, err := a.Info()
		if err != nil {
			return nil, err
		}
		if !info.Options["clientPin"] {
			if err := client.New(k.Transport()).SetPIN(ctx, 2, opts.PIN); err != nil {
				return nil, fmt.Errorf("setting the PIN: %w", err)
			}
		}
	}
	return k, nil
}

// presence approves at once unless SetPresence(false) was called.
func (k *Key) presence(ctx context.Context, _ ctap2.PresenceRequest) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if k.deny.Load() {
		return ctap2.ErrPresenceDenied
	}
	return nil
}

// SetPresence sets the user's answer to the next touch requests: true
// approves (the default), false refuses.
func (k *Key) SetPresence(approve bool) { k.deny.Store(!approve) }

// SetUV sets the outcome of built-in user verification; it reports false
// when the key has none.
func (k *Key) SetUV(verified bool) bool {
	if k.Verifier == nil {
		return false
	}
	k.Verifier.SetVerified(verified)
	return true
}

// Transport is the key as a client.Transport, called directly.
func (k *Key) Transport() client.Transport { return client.Direct{A: k.Authenticator} }
