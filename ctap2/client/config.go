package client

import (
	"context"
	"fmt"

	"github.com/fxamacker/cbor/v2"
	"github.com/vkey-dev/vkey/ctap2"
)

// subcommandRequest is the parameter map shared by authenticatorConfig
// (CTAP 2.1 section 6.11) and authenticatorCredentialManagement (6.8).
type subcommandRequest struct {
	SubCommand        uint64          `cbor:"1,keyasint"`
	SubCommandParams  cbor.RawMessage `cbor:"2,keyasint,omitempty"`
	PinUvAuthProtocol *uint64         `cbor:"3,keyasint,omitempty"`
	PinUvAuthParam    []byte          `cbor:"4,keyasint,omitempty"`
}

type setMinPINLengthParams struct {
	NewMinPINLength   uint64   `cbor:"1,keyasint,omitempty"`
	MinPINLengthRPIDs []string `cbor:"2,keyasint,omitempty"`
	ForceChangePIN    bool     `cbor:"3,keyasint,omitempty"`
}

// config sends one authenticatorConfig subcommand. tok (with the acfg
// permission) may be nil on a key that has no PIN and alwaysUv off.
func (c *Client) config(ctx context.Context, tok *Token, sub uint64, params any) error {
	req := subcommandRequest{SubCommand: sub}
	if params != nil {
		raw, err := ctap2.Marshal(params)
		if err != nil {
			return fmt.Errorf("encoding parameters: %w", err)
		}
		req.SubCommandParams = raw
	}
	if tok != nil {
		req.PinUvAuthProtocol = tok.Version()
		req.PinUvAuthParam = tok.Param(ctap2.ConfigAuthMessage(sub, req.SubCommandParams))
	}
	return c.Call(ctx, ctap2.CmdConfig, req, nil)
}

// EnableEnterpriseAttestation is authenticatorConfig enableEnterpriseAttestation.
func (c *Client) EnableEnterpriseAttestation(ctx context.Context, tok *Token) error {
	if err := c.config(ctx, tok, ctap2.ConfigEnableEnterpriseAttestation, nil); err != nil {
		return fmt.Errorf("enableEnterpriseAttestation: %w", err)
	}
	return nil
}

// ToggleAlwaysUV is authenticatorConfig toggleAlwaysUv.
func (c *Client) ToggleAlwaysUV(ctx context.Context, tok *Token) error {
	if err := c.config(ctx, tok, ctap2.ConfigToggleAlwaysUV, nil); err != nil {
		return fmt.Errorf("toggleAlwaysUv: %w", err)
	}
	return nil
}

// SetMinPINLength is authenticatorConfig setMinPINLength (CTAP 2.1 section
// 6.11.4): newMin 0 keeps the current minimum; rpIDs (if any) replace the
// list of relying parties allowed to read it; forceChange makes the user
// change the PIN.
func (c *Client) SetMinPINLength(ctx context.Context, tok *Token, newMin uint64, rpIDs []string, forceChange bool) error {
	p := setMinPINLengthParams{NewMinPINLength: newMin, MinPINLengthRPIDs: rpIDs, ForceChangePIN: forceChange}
	if err := c.config(ctx, tok, ctap2.ConfigSetMinPINLength, p); err != nil {
		return fmt.Errorf("setMinPINLength: %w", err)
	}
	return nil
}
