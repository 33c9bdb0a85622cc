package client

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/vkey-dev/vkey/ctap2"
)

type pinRequest struct {
	Protocol       uint64                  `cbor:"1,keyasint,omitempty"`
	SubCommand     uint64                  `cbor:"2,keyasint"`
	KeyAgreement   *ctap2.COSEKeyAgreement `cbor:"3,keyasint,omitempty"`
	PinUvAuthParam []byte                  `cbor:"4,keyasint,omitempty"`
	NewPinEnc      []byte                  `cbor:"5,keyasint,omitempty"`
	PinHashEnc     []byte                  `cbor:"6,keyasint,omitempty"`
	Permissions    uint64                  `cbor:"9,keyasint,omitempty"`
	RPID           string                  `cbor:"10,keyasint,omitempty"`
}

type pinResponse struct {
	PinUvAuthToken []byte `cbor:"2,keyasint,omitempty"`
	PINRetries     *int   `cbor:"3,keyasint,omitempty"`
}

func protocol(v uint64) (ctap2.PINProtocol, error) {
	p, ok := ctap2.PINProtocolFor(v)
	if !ok {
		return nil, fmt.Errorf("unsupported PIN/UV auth protocol %d", v)
	}
	return p, nil
}

// PINRetries returns how many PIN attempts remain.
func (c *Client) PINRetries(ctx context.Context) (int, error) {
	var resp pinResponse
	if err := c.Call(ctx, ctap2.CmdClientPIN, pinRequest{SubCommand: 1}, &resp); err != nil {
		return 0, fmt.Errorf("getPINRetries: %w", err)
	}
	if resp.PINRetries == nil {
		return 0, errors.New("getPINRetries: no count in response")
	}
	return *resp.PINRetries, nil
}

func padPIN(pin string) ([]byte, error) {
	if len(pin) > 63 {
		return nil, errors.New("a PIN is at most 63 bytes")
	}
	padded := make([]byte, 64)
	copy(padded, pin)
	return padded, nil
}

// SetPIN sets the first PIN with PIN/UV auth protocol version.
func (c *Client) SetPIN(ctx context.Context, version uint64, pin string) error {
	proto, err := protocol(version)
	if err != nil {
		return err
	}
	padded, err := padPIN(pin)
	if err != nil {
		return err
	}
	ka, shared, err := c.keyAgreement(ctx, proto)
	if err != nil {
		return err
	}
	newPinEnc, err := proto.Encrypt(shared, padded)
	if err != nil {
		return err
	}
	req := pinRequest{Protocol: version, SubCommand: 3, KeyAgreement: ka, NewPinEnc: newPinEnc,
		PinUvAuthParam: proto.Authenticate(shared, newPinEnc)}
	if err := c.Call(ctx, ctap2.CmdClientPIN, req, nil); err != nil {
		return fmt.Errorf("setPIN: %w", err)
	}
	return nil
}

func pinHashEnc(proto ctap2.PINProtocol, shared []byte, pin string) ([]byte, error) {
	h := sha256.Sum256([]byte(pin))
	return proto.Encrypt(shared, h[:16])
}

// ChangePIN changes the PIN from old to pin.
func (c *Client) ChangePIN(ctx context.Context, version uint64, old, pin string) error {
	proto, err := protocol(version)
	if err != nil {
		return err
	}
	padded, err := padPIN(pin)
	if err != nil {
		return err
	}
	ka, shared, err := c.keyAgreement(ctx, proto)
	if err != nil {
		return err
	}
	newPinEnc, err := proto.Encrypt(shared, padded)
	if err != nil {
		return err
	}
	hashEnc, err := pinHashEnc(proto, shared, old)
	if err != nil {
		return err
	}
	req := pinRequest{Protocol: version, SubCommand: 4, KeyAgreement: ka, NewPinEnc: newPinEnc, PinHashEnc: hashEnc,
		PinUvAuthParam: proto.Authenticate(shared, append(append([]byte(nil), newPinEnc...), hashEnc...))}
	if err := c.Call(ctx, ctap2.CmdClientPIN, req, nil); err != nil {
		return fmt.Errorf("changePIN: %w", err)
	}
	return nil
}

// Token is a pinUvAuthToken and the protocol it belongs to.
type Token struct {
	Protocol ctap2.PINProtocol
	Value    []byte
}

// Param authenticates message with the token (a pinUvAuthParam).
func (t *Token) Param(message []byte) []byte { return t.Protocol.Authenticate(t.Value, message) }

// Version is the token's PIN/UV auth protocol number.
func (t *Token) Version() *uint64 {
	v := t.Protocol.Version()
	return &v
}

// PINToken gets a pinUvAuthToken with permissions (and, if rpID is not
// empty, bound to rpID) by getPinUvAuthTokenUsingPinWithPermissions; with
// zero permissions it uses the CTAP 2.0 getPinToken.
func (c *Client) PINToken(ctx context.Context, version uint64, pin string, perms ctap2.Permission, rpID string) (*Token, error) {
	proto, err := protocol(version)
	if err != nil {
		return nil, err
	}
	ka, shared, err := c.keyAgreement(ctx, proto)
	if err != nil {
		return nil, err
	}
	hashEnc, err := pinHashEnc(proto, shared, pin)
	if err != nil {
		return nil, err
	}
	req := pinRequest{Protocol: version, SubCommand: 9, KeyAgreement: ka, PinHashEnc: hashEnc, Permissions: uint64(perms), RPID: rpID}
	if perms == 0 {
		req.SubCommand = 5
	}
	var resp pinResponse
	if err := c.Call(ctx, ctap2.CmdClientPIN, req, &resp); err != nil {
		return nil, fmt.Errorf("getting a PIN token: %w", err)
	}
	token, err := proto.Decrypt(shared, resp.PinUvAuthToken)
	if err != nil {
		return nil, fmt.Errorf("decrypting PIN token: %w", err)
	}
	return &Token{Protocol: proto, Value: token}, nil
}

// HMACSecret is a prepared hmac-secret extension input and what is needed
// to read its output (CTAP 2.1 section 12.5).
type HMACSecret struct {
	Input  map[string]any
	proto  ctap2.PINProtocol
	shared []byte
}

// NewHMACSecret prepares the hmac-secret input for one or two 32-byte salts.
func (c *Client) NewHMACSecret(ctx context.Context, version uint64, salts ...[]byte) (*HMACSecret, error) {
	proto, err := protocol(version)
	if err != nil {
		return nil, err
	}
	ka, shared, err := c.keyAgreement(ctx, proto)
	if err != nil {
		return nil, err
	}
	var all []byte
	for _, s := range salts {
		all = append(all, s...)
	}
	saltEnc, err := proto.Encrypt(shared, all)
	if err != nil {
		return nil, err
	}
	in := map[int]any{1: ka, 2: saltEnc, 3: proto.Authenticate(shared, saltEnc)}
	if version != 1 {
		in[4] = version
	}
	return &HMACSecret{Input: map[string]any{"hmac-secret": in}, proto: proto, shared: shared}, nil
}

// Output decrypts the hmac-secret extension output.
func (h *HMACSecret) Output(enc []byte) ([]byte, error) { return h.proto.Decrypt(h.shared, enc) }

// UVToken gets a pinUvAuthToken through the authenticator's built-in user
// verification (getPinUvAuthTokenUsingUvWithPermissions, CTAP 2.1 section
// 6.5.5.7.3).
func (c *Client) UVToken(ctx context.Context, version uint64, perms ctap2.Permission, rpID string) (*Token, error) {
	proto, err := protocol(version)
	if err != nil {
		return nil, err
	}
	ka, shared, err := c.keyAgreement(ctx, proto)
	if err != nil {
		return nil, err
	}
	req := pinRequest{Protocol: version, SubCommand: 6, KeyAgreement: ka, Permissions: uint64(perms), RPID: rpID}
	var resp pinResponse
	if err := c.Call(ctx, ctap2.CmdClientPIN, req, &resp); err != nil {
		return nil, fmt.Errorf("getting a token by built-in user verification: %w", err)
	}
	token, err := proto.Decrypt(shared, resp.PinUvAuthToken)
	if err != nil {
		return nil, fmt.Errorf("decrypting the token: %w", err)
	}
	return &Token{Protocol: proto, Value: token}, nil
}
