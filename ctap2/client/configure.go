package client

import (
	"context"

	"github.com/vkey-dev/vkey/ctap2"
)

// UnsupportedError is a Session's refusal of a setting the key's getInfo
// does not offer.
type UnsupportedError struct {
	// Feature names the setting: alwaysUv, setMinPINLength or enterprise
	// attestation.
	Feature string
}

func (e *UnsupportedError) Error() string { return "the key does not support " + e.Feature }

// configure runs one authenticatorConfig subcommand, do, with a token
// that has the acfg permission when the key wants one (OptionalToken; CTAP
// 2.1 section 6.11).
func (s *Session) configure(ctx context.Context, do func(tok *Token) error) error {
	tok, err := s.OptionalToken(ctx, ctap2.PermAuthenticatorCfg)
	if err != nil {
		return err
	}
	return do(tok)
}

// SetAlwaysUV turns alwaysUv on or off (toggleAlwaysUv, CTAP 2.1 section
// 6.11.2) and reports whether it changed: a key whose getInfo already says
// on is left alone. A key whose getInfo has no alwaysUv option does not
// support it (section 6.4).
func (s *Session) SetAlwaysUV(ctx context.Context, on bool) (changed bool, err error) {
	current, ok := s.Info.Options["alwaysUv"]
	if !ok {
		return false, &UnsupportedError{"alwaysUv"}
	}
	if current == on {
		return false, nil
	}
	err = s.configure(ctx, func(tok *Token) error { return s.ToggleAlwaysUV(ctx, tok) })
	return err == nil, err
}

// RaiseMinPINLength is setMinPINLength (CTAP 2.1 section 6.11.4) on a key
// whose getInfo has the setMinPINLength option true, with a token when it
// wants one.
func (s *Session) RaiseMinPINLength(ctx context.Context, newMin uint64, rpIDs []string, forceChange bool) error {
	if !s.Info.Options["setMinPINLength"] {
		return &UnsupportedError{"setMinPINLength"}
	}
	return s.configure(ctx, func(tok *Token) error { return s.SetMinPINLength(ctx, tok, newMin, rpIDs, forceChange) })
}

// EnableEP is enableEnterpriseAttestation (CTAP 2.1 section 6.11.1) on a
// key whose getInfo has the ep option, with a token when it wants one.
func (s *Session) EnableEP(ctx context.Context) error {
	if _, ok := s.Info.Options["ep"]; !ok {
		return &UnsupportedError{"enterprise attestation"}
	}
	return s.configure(ctx, func(tok *Token) error { return s.EnableEnterpriseAttestation(ctx, tok) })
}
