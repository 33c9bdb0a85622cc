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
	if err := c.Call(ctx, ctap2.CmdClientPIN, pinRequest{SubCommand: ctap2.ClientPINGetPINRetries}, &resp); err != nil {
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

// pinExchange is a shared secret agreed with the authenticator under one
// PIN/UV auth protocol (getKeyAgreement, CTAP 2.1 section 6.5.5.4): how
// every clientPIN subcommand that carries a secret starts.
type pinExchange struct {
	version uint64
	proto   ctap2.PINProtocol
	ka      *ctap2.COSEKeyAgreement // the platform's key, sent with the request
	shared  []byte
}

// newPINExchange looks up protocol version; agree then does the round trip.
func newPINExchange(version uint64) (*pinExchange, error) {
	proto, err := protocol(version)
	if err != nil {
		return nil, err
	}
	return &pinExchange{version: version, proto: proto}, nil
}

// agree runs getKeyAgreement with the authenticator.
func (x *pinExchange) agree(ctx context.Context, c *Client) error {
	var err error
	x.ka, x.shared, err = c.keyAgreement(ctx, x.proto)
	return err
}

// exchange is newPINExchange then agree.
func (c *Client) exchange(ctx context.Context, version uint64) (*pinExchange, error) {
	x, err := newPINExchange(version)
	if err != nil {
		return nil, err
	}
	if err := x.agree(ctx, c); err != nil {
		return nil, err
	}
	return x, nil
}

// request is a clientPIN request for subCommand carrying the key agreement.
func (x *pinExchange) request(subCommand uint64) pinRequest {
	return pinRequest{Protocol: x.version, SubCommand: subCommand, KeyAgreement: x.ka}
}

// encrypt encrypts plaintext under the shared secret.
func (x *pinExchange) encrypt(plaintext []byte) ([]byte, error) {
	return x.proto.Encrypt(x.shared, plaintext)
}

// authenticate is the pinUvAuthParam of message under the shared secret.
func (x *pinExchange) authenticate(message []byte) []byte {
	return x.proto.Authenticate(x.shared, message)
}

// pinHashEnc is LEFT(SHA-256(pin), 16) encrypted (CTAP 2.1 section 6.5.5.5).
func (x *pinExchange) pinHashEnc(pin string) ([]byte, error) {
	h := sha256.Sum256([]byte(pin))
	return x.encrypt(h[:16])
}

// token decrypts the pinUvAuthToken of a getPinToken-style response.
func (x *pinExchange) token(resp *pinResponse) (*Token, error) {
	token, err := x.proto.Decrypt(x.shared, resp.PinUvAuthToken)
	if err != nil {
		return nil, err
	}
	return &Token{Protocol: x.proto, Value: token}, nil
}

// startNewPIN begins setPIN or changePIN: it checks and pads pin before the
// key agreement round trip, then encrypts it (newPinEnc).
func (c *Client) startNewPIN(ctx context.Context, version uint64, pin string) (*pinExchange, []byte, error) {
	x, err := newPINExchange(version)
	if err != nil {
		return nil, nil, err
	}
	padded, err := padPIN(pin)
	if err != nil {
		return nil, nil, err
	}
	if err := x.agree(ctx, c); err != nil {
		return nil, nil, err
	}
	newPinEnc, err := x.encrypt(padded)
	if err != nil {
		return nil, nil, err
	}
	return x, newPinEnc, nil
}

// SetPIN sets the first PIN with PIN/UV auth protocol version.
func (c *Client) SetPIN(ctx context.Context, version uint64, pin string) error {
	x, newPinEnc, err := c.startNewPIN(ctx, version, pin)
	if err != nil {
		return err
	}
	req := x.request(ctap2.ClientPINSetPIN)
	req.NewPinEnc = newPinEnc
	req.PinUvAuthParam = x.authenticate(newPinEnc)
	if err := c.Call(ctx, ctap2.CmdClientPIN, req, nil); err != nil {
		return fmt.Errorf("setPIN: %w", err)
	}
	return nil
}

// ChangePIN changes the PIN from old to pin.
func (c *Client) ChangePIN(ctx context.Context, version uint64, old, pin string) error {
	x, newPinEnc, err := c.startNewPIN(ctx, version, pin)
	if err != nil {
		return err
	}
	hashEnc, err := x.pinHashEnc(old)
	if err != nil {
		return err
	}
	req := x.request(ctap2.ClientPINChangePIN)
	req.NewPinEnc, req.PinHashEnc = newPinEnc, hashEnc
	req.PinUvAuthParam = x.authenticate(append(append([]byte(nil), newPinEnc...), hashEnc...))
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
	x, err := c.exchange(ctx, version)
	if err != nil {
		return nil, err
	}
	hashEnc, err := x.pinHashEnc(pin)
	if err != nil {
		return nil, err
	}
	req := x.request(ctap2.ClientPINGetTokenUsingPIN)
	req.PinHashEnc, req.Permissions, req.RPID = hashEnc, uint64(perms), rpID
	if perms == 0 {
		req.SubCommand = ctap2.ClientPINGetPINToken
	}
	var resp pinResponse
	if err := c.Call(ctx, ctap2.CmdClientPIN, req, &resp); err != nil {
		return nil, fmt.Errorf("getting a PIN token: %w", err)
	}
	tok, err := x.token(&resp)
	if err != nil {
		return nil, fmt.Errorf("decrypting PIN token: %w", err)
	}
	return tok, nil
}

// HMACSecret is a prepared hmac-secret extension input and what is needed
// to read its output (CTAP 2.1 section 12.5).
type HMACSecret struct {
	// Input goes in the request's hmac-secret (getAssertion) or
	// hmac-secret-mc (makeCredential) extension.
	Input  *ctap2.HMACSecretInput
	proto  ctap2.PINProtocol
	shared []byte
}

// NewHMACSecret prepares the hmac-secret input for one or two 32-byte salts.
func (c *Client) NewHMACSecret(ctx context.Context, version uint64, salts ...[]byte) (*HMACSecret, error) {
	x, err := c.exchange(ctx, version)
	if err != nil {
		return nil, err
	}
	var all []byte
	for _, s := range salts {
		all = append(all, s...)
	}
	saltEnc, err := x.encrypt(all)
	if err != nil {
		return nil, err
	}
	in := &ctap2.HMACSecretInput{KeyAgreement: x.ka, SaltEnc: saltEnc, SaltAuth: x.authenticate(saltEnc)}
	if version != 1 {
		in.PinUvAuthProtocol = &version
	}
	return &HMACSecret{Input: in, proto: x.proto, shared: x.shared}, nil
}

// Output decrypts the hmac-secret extension output.
func (h *HMACSecret) Output(enc []byte) ([]byte, error) { return h.proto.Decrypt(h.shared, enc) }

// UVToken gets a pinUvAuthToken through the authenticator's built-in user
// verification (getPinUvAuthTokenUsingUvWithPermissions, CTAP 2.1 section
// 6.5.5.7.3).
func (c *Client) UVToken(ctx context.Context, version uint64, perms ctap2.Permission, rpID string) (*Token, error) {
	x, err := c.exchange(ctx, version)
	if err != nil {
		return nil, err
	}
	req := x.request(ctap2.ClientPINGetTokenUsingUV)
	req.Permissions, req.RPID = uint64(perms), rpID
	var resp pinResponse
	if err := c.Call(ctx, ctap2.CmdClientPIN, req, &resp); err != nil {
		return nil, fmt.Errorf("getting a token by built-in user verification: %w", err)
	}
	tok, err := x.token(&resp)
	if err != nil {
		return nil, fmt.Errorf("decrypting the token: %w", err)
	}
	return tok, nil
}
