package vkeytest_test

import (
	"bytes"
	"fmt"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/vkey-dev/vkey/ctap2/browser"
	"github.com/vkey-dev/vkey/vkeytest"
)

// account is the relying party's user (go-webauthn's webauthn.User).
type account struct {
	id    []byte
	creds []webauthn.Credential
}

func (a *account) WebAuthnID() []byte                         { return a.id }
func (a *account) WebAuthnName() string                       { return "alice" }
func (a *account) WebAuthnDisplayName() string                { return "Alice" }
func (a *account) WebAuthnCredentials() []webauthn.Credential { return a.creds }

// exampleRP is the relying party under test: go-webauthn for example.com.
func exampleRP() *webauthn.WebAuthn {
	rp, _ := webauthn.New(&webauthn.Config{RPID: "example.com", RPDisplayName: "Example", RPOrigins: []string{"https://example.com"}})
	return rp
}

// A registration, from nothing to a credential the relying party stores.
func ExampleKit_Create() {
	rp, alice := exampleRP(), &account{id: []byte("alice")}
	kit := vkeytest.New(nil) // in a test: vkeytest.New(t)

	options, session, _ := rp.BeginRegistration(alice)
	response, err := kit.Create(options, "https://example.com")
	if err != nil {
		panic(err)
	}
	parsed, _ := protocol.ParseCredentialCreationResponseBytes(response)
	cred, err := rp.CreateCredential(alice, *session, parsed)
	fmt.Println(err, cred.AttestationFormat, cred.Authenticator.Attachment)
	// Output: <nil> none cross-platform
}

// A sign-in with a registered credential: the counter goes up.
func ExampleKit_Get() {
	rp, alice := exampleRP(), &account{id: []byte("alice")}
	kit := vkeytest.New(nil)
	options, session, _ := rp.BeginRegistration(alice)
	response, _ := kit.Create(options, "https://example.com")
	parsed, _ := protocol.ParseCredentialCreationResponseBytes(response)
	cred, _ := rp.CreateCredential(alice, *session, parsed)
	alice.creds = append(alice.creds, *cred)

	login, session, _ := rp.BeginLogin(alice)
	response, err := kit.Get(login, "https://example.com")
	if err != nil {
		panic(err)
	}
	assertion, _ := protocol.ParseCredentialRequestResponseBytes(response)
	signedIn, err := rp.ValidateLogin(alice, *session, assertion)
	fmt.Println(err, signedIn.Authenticator.SignCount > cred.Authenticator.SignCount)
	// Output: <nil> true
}

// A key with a PIN and a relying party that requires user verification:
// the browser's user types the PIN; a wrong one is NotAllowedError.
func ExampleOptions_pin() {
	rp, alice := exampleRP(), &account{id: []byte("alice")}
	kit := vkeytest.New(nil, vkeytest.Options{PIN: "1234"})
	uvRequired := webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{UserVerification: protocol.VerificationRequired})

	options, session, _ := rp.BeginRegistration(alice, uvRequired)
	response, _ := kit.Create(options, "https://example.com")
	parsed, _ := protocol.ParseCredentialCreationResponseBytes(response)
	cred, err := rp.CreateCredential(alice, *session, parsed)
	fmt.Println(err, cred.Flags.UserVerified)

	wrong := vkeytest.New(nil, vkeytest.Options{PIN: "1234", BrowserPIN: "9999"})
	options, _, _ = rp.BeginRegistration(alice, uvRequired)
	_, err = wrong.Create(options, "https://example.com")
	fmt.Println(browser.ErrorName(err))
	// Output:
	// <nil> true
	// NotAllowedError
}

// The PRF extension: the same input gives the same secret at every
// sign-in (WebAuthn L3 section 10.1.4, over CTAP's hmac-secret).
func ExampleKit_Get_prf() {
	rp, alice := exampleRP(), &account{id: []byte("alice")}
	kit := vkeytest.New(nil)
	options, session, _ := rp.BeginRegistration(alice, webauthn.WithExtensions(webauthn.WithExtensionPRFSupport()))
	response, _ := kit.CreateResponse(options, "https://example.com")
	parsed, _ := protocol.ParseCredentialCreationResponseBytes(response.JSON())
	cred, _ := rp.CreateCredential(alice, *session, parsed)
	alice.creds = append(alice.creds, *cred)
	fmt.Println("prf enabled:", *response.ClientExtensionResults.PRF.Enabled)

	secret := func() []byte {
		login, _, _ := rp.BeginLogin(alice, webauthn.WithAssertionExtensions(webauthn.WithExtensionPRF(protocol.PRFValues{First: []byte("salt")})))
		got, err := kit.GetResponse(login, "https://example.com")
		if err != nil {
			panic(err)
		}
		return got.ClientExtensionResults.PRF.Results.First
	}
	first, again := secret(), secret()
	fmt.Println(len(first), bytes.Equal(first, again))
	// Output:
	// prf enabled: true
	// 32 true
}
