package vkeytest_test

import (
	"encoding/json"
	"fmt"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/vkey-dev/vkey/vkeytest"
)

// server stands for "whatever the system being tested uses" in
// descope/virtualwebauthn's README: a relying party (go-webauthn here)
// with a start and a finish for registrations.
type server struct {
	rp       *webauthn.WebAuthn
	sessions map[string]*webauthn.SessionData
}

func newServer() *server {
	return &server{rp: exampleRP(), sessions: map[string]*webauthn.SessionData{}}
}

func (s *server) registerStart(user *account) string {
	options, session, _ := s.rp.BeginRegistration(user)
	s.sessions[string(user.id)] = session
	b, _ := json.Marshal(options)
	return string(b)
}

func (s *server) registerFinish(user *account, response string) error {
	parsed, err := protocol.ParseCredentialCreationResponseBytes([]byte(response))
	if err != nil {
		return err
	}
	cred, err := s.rp.CreateCredential(user, *s.sessions[string(user.id)], parsed)
	if err == nil {
		user.creds = append(user.creds, *cred)
	}
	return err
}

// What descope/virtualwebauthn's README example does (a mock relying
// party, authenticator and credential; register), with a real key in
// fewer lines: its example needs 12, this one 9.
func Example_virtualWebAuthnReadme() {
	server, user := newServer(), &account{id: []byte("alice")}

	kit := vkeytest.New(nil) // in a test: vkeytest.New(t)
	attestationOptions := server.registerStart(user)
	attestationResponse, err := kit.Create(attestationOptions, "https://example.com")
	if err != nil {
		panic(err)
	}
	err = server.registerFinish(user, string(attestationResponse))
	if err != nil {
		panic(err)
	}
	fmt.Println(len(user.creds))
	// Output: 1
}
