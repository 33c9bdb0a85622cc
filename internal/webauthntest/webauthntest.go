// Package webauthntest is a relying party for tests: it wraps
// github.com/go-webauthn/webauthn, code nobody on this project wrote, so
// that vkey's registrations and assertions are checked by an independent
// verifier. It builds the client data a browser would, and the JSON a
// browser would post, around raw CTAP2 outputs.
package webauthntest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/fxamacker/cbor/v2"
	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
)

// RP is one relying party.
type RP struct {
	ID     string
	Origin string
	W      *webauthn.WebAuthn
}

// New returns a relying party for rpID with origin https://rpID.
func New(rpID string) (*RP, error) {
	origin := "https://" + rpID
	w, err := webauthn.New(&webauthn.Config{RPID: rpID, RPDisplayName: "vkey test RP", RPOrigins: []string{origin}})
	if err != nil {
		return nil, fmt.Errorf("webauthn config: %w", err)
	}
	return &RP{ID: rpID, Origin: origin, W: w}, nil
}

// User is an account at the relying party.
type User struct {
	ID          []byte
	Name        string
	Credentials []webauthn.Credential
}

// NewUser returns a user with a random 32-byte handle.
func NewUser(name string) *User {
	id := make([]byte, 32)
	_, _ = rand.Read(id)
	return &User{ID: id, Name: name}
}

// WebAuthnID implements webauthn.User.
func (u *User) WebAuthnID() []byte { return u.ID }

// WebAuthnName implements webauthn.User.
func (u *User) WebAuthnName() string { return u.Name }

// WebAuthnDisplayName implements webauthn.User.
func (u *User) WebAuthnDisplayName() string { return u.Name }

// WebAuthnCredentials implements webauthn.User.
func (u *User) WebAuthnCredentials() []webauthn.Credential { return u.Credentials }

// Ceremony is a started registration or login: the client data a browser
// would have made and the session the RP keeps.
type Ceremony struct {
	ClientDataJSON []byte
	ClientDataHash []byte
	Session        *webauthn.SessionData
	// AllowList is the credential IDs the RP allows (login only).
	AllowList [][]byte
}

func (rp *RP) clientData(typ string, challenge protocol.URLEncodedBase64) ([]byte, []byte) {
	cd, _ := json.Marshal(map[string]any{
		"type": typ, "challenge": challenge.String(), "origin": rp.Origin, "crossOrigin": false,
	})
	h := sha256.Sum256(cd)
	return cd, h[:]
}

// BeginRegistration starts navigator.credentials.create for u.
func (rp *RP) BeginRegistration(u *User, opts ...webauthn.RegistrationOption) (*Ceremony, error) {
	creation, session, err := rp.W.BeginRegistration(u, opts...)
	if err != nil {
		return nil, fmt.Errorf("begin registration: %w", err)
	}
	cd, h := rp.clientData("webauthn.create", creation.Response.Challenge)
	return &Ceremony{ClientDataJSON: cd, ClientDataHash: h, Session: session}, nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// FinishRegistration verifies an authenticatorMakeCredential result (its
// fmt, authData and attStmt as the authenticator encoded it) and adds the
// credential to u.
func (rp *RP) FinishRegistration(u *User, c *Ceremony, credID []byte, format string, authData []byte, attStmt cbor.RawMessage) (*webauthn.Credential, error) {
	attObj, err := cbor.Marshal(map[string]any{"fmt": format, "attStmt": attStmt, "authData": authData})
	if err != nil {
		return nil, fmt.Errorf("attestation object: %w", err)
	}
	body, _ := json.Marshal(map[string]any{
		"id": b64(credID), "rawId": b64(credID), "type": "public-key",
		"authenticatorAttachment": "cross-platform",
		"clientExtensionResults":  map[string]any{},
		"response": map[string]any{
			"clientDataJSON":    b64(c.ClientDataJSON),
			"attestationObject": b64(attObj),
			"transports":        []string{"usb"},
		},
	})
	parsed, err := protocol.ParseCredentialCreationResponseBytes(body)
	if err != nil {
		return nil, fmt.Errorf("parse registration: %w", err)
	}
	cred, err := rp.W.CreateCredential(u, *c.Session, parsed)
	if err != nil {
		return nil, fmt.Errorf("verify registration: %w", Describe(err))
	}
	u.Credentials = append(u.Credentials, *cred)
	return cred, nil
}

// BeginLogin starts navigator.credentials.get for u (with u's credentials
// as the allow list), or a discoverable login when u is nil.
func (rp *RP) BeginLogin(u *User, opts ...webauthn.LoginOption) (*Ceremony, error) {
	var (
		assertion *protocol.CredentialAssertion
		session   *webauthn.SessionData
		err       error
	)
	if u == nil {
		assertion, session, err = rp.W.BeginDiscoverableLogin(opts...)
	} else {
		assertion, session, err = rp.W.BeginLogin(u, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("begin login: %w", err)
	}
	cd, h := rp.clientData("webauthn.get", assertion.Response.Challenge)
	c := &Ceremony{ClientDataJSON: cd, ClientDataHash: h, Session: session}
	for _, d := range assertion.Response.AllowedCredentials {
		c.AllowList = append(c.AllowList, d.CredentialID)
	}
	return c, nil
}

// FinishLogin verifies an authenticatorGetAssertion result for u (or, when
// u is nil, for the user found by handle in users) and updates the stored
// credential's counter and flags.
func (rp *RP) FinishLogin(u *User, users []*User, c *Ceremony, credID, authData, signature, userHandle []byte) (*webauthn.Credential, error) {
	body, _ := json.Marshal(map[string]any{
		"id": b64(credID), "rawId": b64(credID), "type": "public-key",
		"authenticatorAttachment": "cross-platform",
		"clientExtensionResults":  map[string]any{},
		"response": map[string]any{
			"clientDataJSON":    b64(c.ClientDataJSON),
			"authenticatorData": b64(authData),
			"signature":         b64(signature),
			"userHandle":        b64(userHandle),
		},
	})
	parsed, err := protocol.ParseCredentialRequestResponseBytes(body)
	if err != nil {
		return nil, fmt.Errorf("parse assertion: %w", Describe(err))
	}
	var cred *webauthn.Credential
	if u != nil {
		cred, err = rp.W.ValidateLogin(u, *c.Session, parsed)
	} else {
		cred, err = rp.W.ValidateDiscoverableLogin(func(rawID, handle []byte) (webauthn.User, error) {
			for _, cand := range users {
				if string(cand.ID) == string(handle) {
					u = cand
					return cand, nil
				}
			}
			return nil, fmt.Errorf("no user with handle %x", handle)
		}, *c.Session, parsed)
	}
	if err != nil {
		return nil, fmt.Errorf("verify assertion: %w", Describe(err))
	}
	for i := range u.Credentials {
		if string(u.Credentials[i].ID) == string(cred.ID) {
			u.Credentials[i] = *cred
		}
	}
	return cred, nil
}

// Describe adds go-webauthn's detail (the protocol.Error type and
// DevInfo) to its error.
func Describe(err error) error {
	if pe, ok := err.(*protocol.Error); ok {
		return fmt.Errorf("%w (%s: %s)", err, pe.Type, pe.DevInfo)
	}
	return err
}
