package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/vkey-dev/vkey/ctap2"
)

// Errors of Session for what the key cannot do.
var (
	// ErrNoPIN: a PIN token is needed and the key has no PIN.
	ErrNoPIN = errors.New("the key has no PIN")
	// ErrNoCredMgmt: the key has neither credMgmt nor credentialMgmtPreview.
	ErrNoCredMgmt = errors.New("the key does not support credential management")
	// ErrNoLargeBlobs: the key has no largeBlobs option.
	ErrNoLargeBlobs = errors.New("the key does not support large blobs")
	// ErrNoCredential: no discoverable credential has the ID asked for.
	ErrNoCredential = errors.New("no discoverable credential with that ID")
	// ErrNoLargeBlobKey: the credential was made without the largeBlobKey
	// extension.
	ErrNoLargeBlobKey = errors.New("the credential has no largeBlobKey")
)

// Session is a Client that knows the key's getInfo and applies the
// platform's rules to it: which PIN/UV auth protocol to speak, when a
// token is needed and with which permissions, the fallback to the preview
// credential management command, finding a credential's large-blob key.
type Session struct {
	*Client
	// Info is the key's getInfo, read by NewSession.
	Info *ctap2.GetInfoResponse
	// PIN returns the user's PIN; it is asked only when a token is needed.
	PIN func(ctx context.Context) (string, error)
}

// NewSession reads the key's getInfo over t.
func NewSession(ctx context.Context, t Transport, pin func(ctx context.Context) (string, error)) (*Session, error) {
	c := New(t)
	info, err := c.GetInfo(ctx)
	if err != nil {
		return nil, err
	}
	return &Session{Client: c, Info: info, PIN: pin}, nil
}

// PINProtocol is the PIN/UV auth protocol to use with a key: its first
// preference among those this client speaks (CTAP 2.1 section 6.5.5.1:
// pinUvAuthProtocols lists them in the key's order of preference), 1 when
// it lists none (a CTAP 2.0 key).
func PINProtocol(info *ctap2.GetInfoResponse) uint64 {
	for _, p := range info.PinUvAuthProtocols {
		if p == 1 || p == 2 {
			return p
		}
	}
	return 1
}

// Protocol is PINProtocol of the key.
func (s *Session) Protocol() uint64 { return PINProtocol(s.Info) }

// PINSet reports getInfo's clientPin option: a PIN is set.
func (s *Session) PINSet() bool { return s.Info.Options["clientPin"] }

// Token asks for the PIN and gets a pinUvAuthToken with perms, bound to
// rpID when it is not empty (CTAP 2.1 section 6.5.5.7.2). It fails with
// ErrNoPIN when the key has none.
func (s *Session) Token(ctx context.Context, perms ctap2.Permission, rpID string) (*Token, error) {
	if !s.PINSet() {
		return nil, ErrNoPIN
	}
	if s.PIN == nil {
		return nil, errors.New("client: a PIN is needed and Session.PIN is nil")
	}
	pin, err := s.PIN(ctx)
	if err != nil {
		return nil, err
	}
	return s.PINToken(ctx, s.Protocol(), pin, perms, rpID)
}

// OptionalToken is Token when a PIN is set or alwaysUv is on, and nil
// otherwise: authenticatorConfig and largeBlobs writes need a token only
// then (CTAP 2.1 sections 6.10.2 and 6.11).
func (s *Session) OptionalToken(ctx context.Context, perms ctap2.Permission) (*Token, error) {
	if !s.PINSet() && !s.Info.Options["alwaysUv"] {
		return nil, nil
	}
	return s.Token(ctx, perms, "")
}

// CredentialManager opens credential management with a token that has
// the cm permission and perms besides. A key that has only the preview
// command (0x41, credentialMgmtPreview, CTAP 2.1 pre) gets it, with a
// token from getPinToken, which has no permissions and may do anything.
func (s *Session) CredentialManager(ctx context.Context, perms ctap2.Permission) (*CredMgmt, *Token, error) {
	preview := !s.Info.Options["credMgmt"] && s.Info.Options["credentialMgmtPreview"]
	if !s.Info.Options["credMgmt"] && !preview {
		return nil, nil, ErrNoCredMgmt
	}
	perms |= ctap2.PermCredentialMgmt
	if preview {
		// A CTAP 2.1-pre key knows no permissions: its token comes from
		// getPinToken (Token with none), as libfido2 gets it for such keys.
		perms = 0
	}
	tok, err := s.Token(ctx, perms, "")
	if err != nil {
		return nil, nil, err
	}
	return s.CredentialManagement(tok, preview), tok, nil
}

// Find returns the discoverable credential with id, or ErrNoCredential.
func (m *CredMgmt) Find(ctx context.Context, id []byte) (*Credential, error) {
	all, err := m.All(ctx)
	if err != nil {
		return nil, err
	}
	for i := range all {
		if bytes.Equal(all[i].ID, id) {
			return &all[i], nil
		}
	}
	return nil, ErrNoCredential
}

// LargeBlobKey finds the largeBlobKey of credential id through credential
// management (CTAP 2.1 section 6.8.3: enumerateCredentials returns it), and
// returns it with the token, which has perms besides cm (for a write:
// ctap2.PermLargeBlobWrite).
func (s *Session) LargeBlobKey(ctx context.Context, id []byte, perms ctap2.Permission) ([]byte, *Token, error) {
	if !s.Info.Options["largeBlobs"] {
		return nil, nil, ErrNoLargeBlobs
	}
	m, tok, err := s.CredentialManager(ctx, perms)
	if err != nil {
		return nil, nil, err
	}
	c, err := m.Find(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if c.LargeBlobKey == nil {
		return nil, nil, fmt.Errorf("%w (it was made without the largeBlobKey extension)", ErrNoLargeBlobKey)
	}
	return c.LargeBlobKey, tok, nil
}
