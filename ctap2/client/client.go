// Package client is the platform side of CTAP2: it speaks to any FIDO2
// authenticator (a vkey, or a hardware key) over a Transport, as libfido2
// or a browser would. The vkey CLI manages keys through it, and tests use
// it to drive an authenticator in-process.
package client

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
	"github.com/vkey-dev/vkey/ctap2"
)

// Transport carries one CTAP2 message (command byte and CBOR) and returns
// the authenticator's answer (status byte and CBOR). *hid.Client is one.
type Transport interface {
	CBOR(ctx context.Context, msg []byte) ([]byte, error)
}

// Direct is a Transport that calls an in-process authenticator.
type Direct struct{ A *ctap2.Authenticator }

// CBOR implements Transport.
func (d Direct) CBOR(ctx context.Context, msg []byte) ([]byte, error) {
	return d.A.HandleCBOR(ctx, msg), nil
}

// Client speaks CTAP2 to one authenticator.
type Client struct {
	t Transport
}

// New returns a client over t.
func New(t Transport) *Client { return &Client{t: t} }

// Call sends command cmd with req (nil for none) encoded as CTAP2 CBOR and
// decodes the response into resp (nil to ignore it). A status other than
// CTAP2_OK is returned as a ctap2.Status error.
func (c *Client) Call(ctx context.Context, cmd byte, req, resp any) error {
	msg := []byte{cmd}
	if req != nil {
		body, err := ctap2.Marshal(req)
		if err != nil {
			return fmt.Errorf("encoding request: %w", err)
		}
		msg = append(msg, body...)
	}
	out, err := c.t.CBOR(ctx, msg)
	if err != nil {
		return err
	}
	if len(out) == 0 {
		return errors.New("empty response from authenticator")
	}
	if st := ctap2.Status(out[0]); st != ctap2.StatusOK {
		return st
	}
	if resp != nil && len(out) > 1 {
		if err := cbor.Unmarshal(out[1:], resp); err != nil {
			return fmt.Errorf("decoding response: %w", err)
		}
	}
	return nil
}

// GetInfo is authenticatorGetInfo.
func (c *Client) GetInfo(ctx context.Context) (*ctap2.GetInfoResponse, error) {
	var info ctap2.GetInfoResponse
	if err := c.Call(ctx, ctap2.CmdGetInfo, nil, &info); err != nil {
		return nil, fmt.Errorf("getInfo: %w", err)
	}
	return &info, nil
}

// Attestation is an authenticatorMakeCredential response with the
// attestation statement kept as the authenticator encoded it.
type Attestation struct {
	Format       string          `cbor:"1,keyasint"`
	AuthData     []byte          `cbor:"2,keyasint"`
	AttStmt      cbor.RawMessage `cbor:"3,keyasint"`
	EPAtt        bool            `cbor:"4,keyasint,omitempty"`
	LargeBlobKey []byte          `cbor:"5,keyasint,omitempty"`
}

// CredentialID extracts the credential ID from the attested credential data.
func (a *Attestation) CredentialID() ([]byte, error) {
	ad := a.AuthData
	if len(ad) < 55 || ad[32]&0x40 == 0 {
		return nil, errors.New("authenticator data carries no attested credential")
	}
	n := int(ad[53])<<8 | int(ad[54])
	if len(ad) < 55+n {
		return nil, errors.New("authenticator data truncated")
	}
	return ad[55 : 55+n], nil
}

// MakeCredential is authenticatorMakeCredential.
func (c *Client) MakeCredential(ctx context.Context, req *ctap2.MakeCredentialRequest) (*Attestation, error) {
	var resp Attestation
	if err := c.Call(ctx, ctap2.CmdMakeCredential, req, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// GetAssertion is authenticatorGetAssertion.
func (c *Client) GetAssertion(ctx context.Context, req *ctap2.GetAssertionRequest) (*ctap2.GetAssertionResponse, error) {
	var resp ctap2.GetAssertionResponse
	if err := c.Call(ctx, ctap2.CmdGetAssertion, req, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// GetNextAssertion is authenticatorGetNextAssertion.
func (c *Client) GetNextAssertion(ctx context.Context) (*ctap2.GetAssertionResponse, error) {
	var resp ctap2.GetAssertionResponse
	if err := c.Call(ctx, ctap2.CmdGetNextAssertion, nil, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// Reset is authenticatorReset.
func (c *Client) Reset(ctx context.Context) error { return c.Call(ctx, ctap2.CmdReset, nil, nil) }

// Selection is authenticatorSelection.
func (c *Client) Selection(ctx context.Context) error {
	return c.Call(ctx, ctap2.CmdSelection, nil, nil)
}

// ClientDataHash hashes client data (a convenience for callers that have
// no browser to make it).
func ClientDataHash(clientData []byte) []byte {
	h := sha256.Sum256(clientData)
	return h[:]
}

// keyAgreement runs getKeyAgreement and returns the platform's key and the
// shared secret (CTAP 2.1 section 6.5.5.4).
func (c *Client) keyAgreement(ctx context.Context, proto ctap2.PINProtocol) (*ctap2.COSEKeyAgreement, []byte, error) {
	var resp struct {
		KeyAgreement *ctap2.COSEKeyAgreement `cbor:"1,keyasint"`
	}
	req := pinRequest{Protocol: proto.Version(), SubCommand: ctap2.ClientPINGetKeyAgreement}
	if err := c.Call(ctx, ctap2.CmdClientPIN, req, &resp); err != nil {
		return nil, nil, fmt.Errorf("getKeyAgreement: %w", err)
	}
	if resp.KeyAgreement == nil {
		return nil, nil, errors.New("getKeyAgreement: no key in response")
	}
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	shared, err := ctap2.SharedSecret(proto, priv, resp.KeyAgreement)
	if err != nil {
		return nil, nil, fmt.Errorf("key agreement: %w", err)
	}
	mine := ctap2.EncodeKeyAgreement(priv.PublicKey())
	return &mine, shared, nil
}
