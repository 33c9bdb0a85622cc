// Package browser is the browser's side of WebAuthn (WebAuthn Level 3
// sections 5.1.3 and 5.1.4) over ctap2/client: it takes a relying party's
// options JSON and an origin, checks the RP ID against the origin, builds
// clientDataJSON, runs the CTAP2 ceremony on any authenticator (an
// in-process vkey, a running vkey on any transport, a hardware key) with
// the PIN, user verification, list pre-flights and client extensions a
// browser handles, and returns the response JSON the relying party
// verifies. Failures are *Error values named as the DOMExceptions a
// browser throws.
package browser

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/ctap2/client"
)

// Options configure a Client. The zero value is a browser whose user knows
// no PIN.
type Options struct {
	// PIN is the user's answer when the authenticator asks for its PIN;
	// empty means the user cannot give one (user verification then needs
	// the key's built-in method).
	PIN string
	// DefaultTimeout bounds a ceremony whose options give no timeout
	// (default 5 minutes, Chromium's); options may ask for at most 10
	// minutes.
	DefaultTimeout time.Duration
	// SelectAccount picks among the discoverable credentials a key returns
	// for an empty allowCredentials, as a browser's account chooser does;
	// nil picks the first (the newest, CTAP 2.1 section 6.2.2 step 12).
	SelectAccount func(users []User) int
}

// User is one account offered to SelectAccount.
type User struct {
	CredentialID []byte
	UserID       []byte
	Name         string
	DisplayName  string
}

// Client is a browser's WebAuthn client over one authenticator. Its
// methods are safe to call one at a time, as a browser runs one ceremony
// at a time per key.
type Client struct {
	ctap *client.Client
	opts Options

	mu sync.Mutex
	// info is the key's getInfo, read at the first ceremony and again
	// after a ceremony that failed (see retryable).
	info *ctap2.GetInfoResponse
}

// New returns a client over t (a *hid.Client, client.Direct, ...).
func New(t client.Transport, opts Options) *Client {
	return NewFromClient(client.New(t), opts)
}

// NewFromClient returns a client over an existing CTAP2 client.
func NewFromClient(c *client.Client, opts Options) *Client {
	if opts.DefaultTimeout <= 0 {
		opts.DefaultTimeout = 5 * time.Minute
	}
	return &Client{ctap: c, opts: opts}
}

// CTAP returns the CTAP2 client underneath.
func (c *Client) CTAP() *client.Client { return c.ctap }

// maxTimeout is the longest a ceremony's options may ask for (Chromium
// caps at 10 minutes; WebAuthn L3 section 15.1 leaves it to the client).
const maxTimeout = 10 * time.Minute

// withTimeout bounds ctx by the options' timeout (milliseconds).
func (c *Client) withTimeout(ctx context.Context, ms uint64) (context.Context, context.CancelFunc) {
	d := c.opts.DefaultTimeout
	if ms > 0 {
		d = min(time.Duration(ms)*time.Millisecond, maxTimeout)
	}
	return context.WithTimeout(ctx, d)
}

// clientData builds the CollectedClientData JSON (WebAuthn L3 section
// 5.8.1) with the members in the order browsers write them (section
// 5.8.1.1's serialization: type, challenge, origin, crossOrigin, then
// topOrigin), and its hash.
func clientData(typ string, challenge []byte, o callerOrigin, topOrigin string) ([]byte, []byte, error) {
	top := ""
	if topOrigin != "" {
		t, err := parseOrigin(topOrigin)
		if err != nil {
			return nil, nil, err
		}
		if t.serialized != o.serialized {
			top = t.serialized
		}
	}
	b := make([]byte, 0, 96+len(o.serialized)+len(top)+base64.RawURLEncoding.EncodedLen(len(challenge)))
	b = append(b, `{"type":`...)
	b = appendJSONString(b, typ)
	b = append(b, `,"challenge":"`...)
	b = base64.RawURLEncoding.AppendEncode(b, challenge)
	b = append(b, `","origin":`...)
	b = appendJSONString(b, o.serialized)
	if top == "" {
		b = append(b, `,"crossOrigin":false}`...)
	} else {
		b = append(b, `,"crossOrigin":true,"topOrigin":`...)
		b = appendJSONString(b, top)
		b = append(b, '}')
	}
	h := sha256.Sum256(b)
	return b, h[:], nil
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// session is one ceremony's view of the authenticator.
type session struct {
	c    *Client
	info *ctap2.GetInfoResponse
	rpID string
	// token is the pinUvAuthToken of this ceremony, if user verification
	// is used through one; builtinUV asks for the uv option instead.
	token     *client.Token
	builtinUV bool
	// tokenSpent is set when a pre-flight used the token: a CTAP 2.1 key
	// may have cleared its permissions (section 6.2.2), so the ceremony
	// gets a new one (renewToken).
	tokenSpent bool
	// uvRequirement and perms are what verifyUser was asked, for renewToken.
	uvRequirement string
	perms         ctap2.Permission
}

// pinUVProtocol is the key's first choice among the PIN/UV auth protocols
// this client speaks (CTAP 2.1 section 6.5.5.1).
func (s *session) pinUVProtocol() uint64 {
	for _, p := range s.info.PinUvAuthProtocols {
		if p == 1 || p == 2 {
			return p
		}
	}
	return 1
}

func (s *session) option(name string) bool { return s.info.Options[name] }

// verifyUser does what a browser does for userVerification (WebAuthn L3
// section 5.1.3 steps 22.5-22.8, CTAP 2.1 section 6.1.1): "required" gets
// a pinUvAuthToken with perms by the key's built-in UV or the PIN, and
// fails with NotAllowedError when the key can do neither; "preferred" does
// so when it can; "discouraged" does not, unless the key's alwaysUv
// demands it.
func (s *session) verifyUser(ctx context.Context, requirement string, perms ctap2.Permission) error {
	if requirement == "" {
		requirement = "preferred"
	}
	s.uvRequirement, s.perms = requirement, perms
	if !s.option("pinUvAuthToken") {
		// A CTAP 2.0 key: getPinToken, without permissions or RP ID
		// (CTAP 2.1 section 6.5.5.7.1 keeps it for such keys).
		perms = 0
	}
	hasUV := s.option("uv")
	hasPIN := s.option("clientPin") && s.c.opts.PIN != ""
	need := requirement == "required" || s.option("alwaysUv")
	want := need || (requirement == "preferred" && (hasUV || hasPIN))
	if !want {
		return nil
	}
	switch {
	case hasUV && s.option("uvToken"):
		tok, err := s.c.ctap.UVToken(ctx, s.pinUVProtocol(), perms, s.rpID)
		if err == nil {
			s.token = tok
			return nil
		}
		if !hasPIN {
			return ctapError("user verification", err)
		}
		// Built-in UV failed or is blocked: fall back to the PIN, as
		// Chromium does (CTAP 2.1 section 6.5.5.7.3).
	case hasUV:
		s.builtinUV = true
		return nil
	}
	if hasPIN {
		rpID := s.rpID
		if perms == 0 {
			rpID = ""
		}
		tok, err := s.c.ctap.PINToken(ctx, s.pinUVProtocol(), s.c.opts.PIN, perms, rpID)
		if err != nil {
			return ctapError("user verification", err)
		}
		s.token = tok
		return nil
	}
	if !need {
		return nil
	}
	if s.option("clientPin") {
		return domError(NotAllowedError, nil, "user verification is required and the key has a PIN, but this client was given none (browser.Options.PIN, vkeytest.Options.PIN, or vkey webauthn --pin-file)")
	}
	return domError(NotAllowedError, nil, "user verification is required and the key has neither a PIN nor built-in user verification (set a PIN: `vkey pin set`)")
}

// renewToken gets a new token when a pre-flight spent the one the
// ceremony had.
func (s *session) renewToken(ctx context.Context) error {
	if !s.tokenSpent {
		return nil
	}
	s.token, s.tokenSpent = nil, false
	return s.verifyUser(ctx, s.uvRequirement, s.perms)
}

// uvParams fills the pinUvAuthParam and protocol for clientDataHash, or
// the uv option for built-in verification.
func (s *session) uvParams(clientDataHash []byte, options map[string]bool) ([]byte, *uint64, map[string]bool) {
	if s.token != nil {
		return s.token.Param(clientDataHash), s.token.Version(), options
	}
	if s.builtinUV {
		if options == nil {
			options = map[string]bool{}
		}
		options["uv"] = true
	}
	return nil, nil, options
}

// descriptorOverhead is what a descriptor takes besides its ID:
// {"id": bstr, "type": "public-key"} in CBOR.
const descriptorOverhead = 24

// listLimits is how many descriptors, and how many bytes of them, one
// request may carry.
func (s *session) listLimits() (count, budget int) {
	count = 1
	if n := s.info.MaxCredentialCountInList; n > 0 {
		count = int(n)
	}
	budget = 1024
	if s.info.MaxMsgSize > 0 {
		budget = int(s.info.MaxMsgSize)
	}
	// clientDataHash, rpId, pinUvAuthParam, options and extensions: what
	// the rest of a getAssertion or makeCredential may take.
	return count, budget - 512
}

// tooLong reports whether list needs more than one request.
func (s *session) tooLong(list []ctap2.CredentialDescriptor) bool {
	count, budget := s.listLimits()
	if len(list) > count {
		return true
	}
	size := 0
	for _, d := range list {
		size += len(d.ID) + descriptorOverhead
	}
	return size > budget
}

// batches splits list into the requests a key takes: at most
// maxCredentialCountInList descriptors each (CTAP 2.1 section 6.4; 1 on a
// CTAP 2.0 key that does not say, as Chromium does), and few enough bytes
// to leave room in maxMsgSize for the rest of the request.
func (s *session) batches(list []ctap2.CredentialDescriptor) [][]ctap2.CredentialDescriptor {
	count, budget := s.listLimits()
	var out [][]ctap2.CredentialDescriptor
	var cur []ctap2.CredentialDescriptor
	size := 0
	for _, d := range list {
		n := len(d.ID) + descriptorOverhead
		if len(cur) > 0 && (len(cur) == count || size+n > budget) {
			out = append(out, cur)
			cur, size = nil, 0
		}
		cur = append(cur, d)
		size += n
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// usableDescriptors drops descriptors a key cannot hold: other types, and
// IDs longer than maxCredentialIdLength (CTAP 2.1 section 6.4; Chromium
// filters them the same way).
func (s *session) usableDescriptors(list []CredentialDescriptor) []ctap2.CredentialDescriptor {
	var out []ctap2.CredentialDescriptor
	for _, d := range list {
		if d.Type != "public-key" || len(d.ID) == 0 {
			continue
		}
		if n := s.info.MaxCredentialIDLength; n > 0 && uint64(len(d.ID)) > n {
			continue
		}
		out = append(out, ctap2.CredentialDescriptor{Type: "public-key", ID: d.ID})
	}
	return out
}

// preflight finds which credential of list the key holds for the RP by
// silent getAssertions (up=false) over the batches a key takes, as
// Chromium does for lists too long for one request. It returns the
// matching descriptor, or nil when the key holds none.
func (s *session) preflight(ctx context.Context, list []ctap2.CredentialDescriptor) (*ctap2.CredentialDescriptor, error) {
	dummy := sha256.Sum256([]byte("vkey browser pre-flight"))
	for _, batch := range s.batches(list) {
		req := &ctap2.GetAssertionRequest{RPID: s.rpID, ClientDataHash: dummy[:], AllowList: batch, Options: map[string]bool{"up": false}}
		if s.token != nil {
			// With a token the key also finds credProtect level 3
			// credentials (CTAP 2.1 section 6.2.2 step 7).
			req.PinUvAuthParam, req.PinUvAuthProtocol = s.token.Param(dummy[:]), s.token.Version()
			s.tokenSpent = true
		}
		resp, err := s.c.ctap.GetAssertion(ctx, req)
		var st ctap2.Status
		switch {
		case err == nil:
			d := resp.Credential
			if len(d.ID) == 0 && len(batch) == 1 {
				d = batch[0]
			}
			return &ctap2.CredentialDescriptor{Type: "public-key", ID: d.ID}, nil
		case errors.As(err, &st) && st == ctap2.ErrNoCredentials:
			continue
		default:
			return nil, ctapError("the credential pre-flight", err)
		}
	}
	return nil, nil
}

// start opens a ceremony: it checks the origin and RP ID and reads getInfo.
func (c *Client) start(ctx context.Context, origin, rpID string) (*session, callerOrigin, error) {
	o, err := parseOrigin(origin)
	if err != nil {
		return nil, o, err
	}
	id, err := checkRPID(o, rpID)
	if err != nil {
		return nil, o, err
	}
	c.mu.Lock()
	info := c.info
	c.mu.Unlock()
	if info == nil {
		if info, err = c.readInfo(ctx); err != nil {
			return nil, o, err
		}
	}
	return &session{c: c, info: info, rpID: id}, o, nil
}

// readInfo reads getInfo and keeps it for the next ceremonies.
func (c *Client) readInfo(ctx context.Context) (*ctap2.GetInfoResponse, error) {
	info, err := c.ctap.GetInfo(ctx)
	if err != nil {
		return nil, ctapError("getInfo", err)
	}
	c.mu.Lock()
	c.info = info
	c.mu.Unlock()
	return info, nil
}

// retryable reports whether a ceremony that failed with err may have
// failed because the getInfo it relied on is out of date (another client
// set a PIN, alwaysUv was turned on): then getInfo is read again, and
// retryable is true when it changed, so that the ceremony runs once more
// on what the key now says, as a browser that reads getInfo for every
// ceremony would have.
func (c *Client) retryable(ctx context.Context, err error) bool {
	switch ErrorName(err) {
	case NotAllowedError, ConstraintError, NotSupportedError:
	default:
		return false
	}
	if ctx.Err() != nil {
		return false
	}
	c.mu.Lock()
	old := c.info
	c.info = nil
	c.mu.Unlock()
	fresh, ferr := c.readInfo(ctx)
	return ferr == nil && old != nil && !reflect.DeepEqual(old, fresh)
}

// supportsExtension reports whether getInfo lists ext.
func (s *session) supportsExtension(ext string) bool {
	for _, e := range s.info.Extensions {
		if e == ext {
			return true
		}
	}
	return false
}

// errorf is a wrapped error for failures that are not the user's.
func errorf(format string, args ...any) error {
	return domError(NotAllowedError, fmt.Errorf(format, args...), "the authenticator's answer could not be read")
}
