package vkeytest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/ctap2/browser"
	"github.com/vkey-dev/vkey/internal/clientsummary"
	"github.com/vkey-dev/vkey/internal/webauthntest"
	"github.com/vkey-dev/vkey/vkeytest"
)

const origin = "https://login.example.com"

// newRP is go-webauthn configured for RP ID example.com and origin.
func newRP(t testing.TB) *webauthn.WebAuthn {
	t.Helper()
	w, err := webauthn.New(&webauthn.Config{RPID: "example.com", RPDisplayName: "Example", RPOrigins: []string{origin}})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// registration is one registration's RP-side choices.
type registration struct {
	alg         int64
	conveyance  protocol.ConveyancePreference
	residentKey protocol.ResidentKeyRequirement
	uv          protocol.UserVerificationRequirement
}

// register has go-webauthn start and finish a registration through the kit.
func register(t testing.TB, kit *vkeytest.Kit, rp *webauthn.WebAuthn, u *webauthntest.User, r registration) (*webauthn.Credential, error) {
	t.Helper()
	if r.alg == 0 {
		r.alg = -7
	}
	opts, session, err := rp.BeginRegistration(u,
		webauthn.WithCredentialParameters([]protocol.CredentialParameter{{Type: "public-key", Algorithm: webauthncose.COSEAlgorithmIdentifier(r.alg)}}),
		webauthn.WithConveyancePreference(r.conveyance),
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{ResidentKey: r.residentKey, UserVerification: r.uv}),
		webauthn.WithExclusions(webauthn.Credentials(u.Credentials).CredentialDescriptors()),
	)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := kit.Create(opts, origin)
	if err != nil {
		return nil, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(resp)
	if err != nil {
		t.Fatalf("go-webauthn cannot parse the registration: %v\n%s", err, resp)
	}
	cred, err := rp.CreateCredential(u, *session, parsed)
	if err != nil {
		t.Fatalf("go-webauthn rejected the registration: %v\n%s", err, resp)
	}
	u.Credentials = append(u.Credentials, *cred)
	return cred, nil
}

// login has go-webauthn start and finish a sign-in; a nil u is a
// discoverable (username-less) one among users.
func login(t testing.TB, kit *vkeytest.Kit, rp *webauthn.WebAuthn, u *webauthntest.User, users []*webauthntest.User, uv protocol.UserVerificationRequirement) (*webauthn.Credential, error) {
	t.Helper()
	var (
		opts    *protocol.CredentialAssertion
		session *webauthn.SessionData
		err     error
	)
	if u != nil {
		opts, session, err = rp.BeginLogin(u, webauthn.WithUserVerification(uv))
	} else {
		opts, session, err = rp.BeginDiscoverableLogin(webauthn.WithUserVerification(uv))
	}
	if err != nil {
		t.Fatal(err)
	}
	resp, err := kit.Get(opts, origin)
	if err != nil {
		return nil, err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(resp)
	if err != nil {
		t.Fatalf("go-webauthn cannot parse the assertion: %v\n%s", err, resp)
	}
	var cred *webauthn.Credential
	if u != nil {
		cred, err = rp.ValidateLogin(u, *session, parsed)
	} else {
		cred, err = rp.ValidateDiscoverableLogin(func(_, handle []byte) (webauthn.User, error) {
			for _, x := range users {
				if bytes.Equal(x.ID, handle) {
					return x, nil
				}
			}
			return nil, fmt.Errorf("no user %x", handle)
		}, *session, parsed)
	}
	if err != nil {
		t.Fatalf("go-webauthn rejected the assertion: %v\n%s", err, resp)
	}
	return cred, nil
}

// TestGoWebAuthnAccepts has go-webauthn, a relying party nobody on this
// project wrote, verify the kit's registrations and sign-ins: attestation
// none (conveyance none strips it) and packed (self and with x5c), ES256
// and EdDSA, with and without a PIN (UV required), discoverable or not.
func TestGoWebAuthnAccepts(t *testing.T) {
	clientsummary.Record(t, "go-webauthn, in-process kit (vkeytest)", "registration and sign-in through the WebAuthn kit")
	type format struct {
		key        ctap2.AttestationFormat
		conveyance protocol.ConveyancePreference
		want       string
	}
	formats := []format{
		{ctap2.AttestationPacked, protocol.PreferNoAttestation, "none"},
		{ctap2.AttestationNone, protocol.PreferDirectAttestation, "none"},
		{ctap2.AttestationPackedSelf, protocol.PreferDirectAttestation, "packed"},
		{ctap2.AttestationPacked, protocol.PreferDirectAttestation, "packed"},
	}
	for _, f := range formats {
		for _, alg := range []int64{-7, -8} {
			for _, pin := range []string{"", "4321"} {
				for _, rk := range []bool{false, true} {
					name := fmt.Sprintf("%s-%s/alg%d/pin=%v/rk=%v", f.key, f.conveyance, alg, pin != "", rk)
					t.Run(name, func(t *testing.T) {
						kit := vkeytest.New(t, vkeytest.Options{Attestation: f.key, PIN: pin})
						rp := newRP(t)
						u := webauthntest.NewUser("alice")
						r := registration{alg: alg, conveyance: f.conveyance, residentKey: protocol.ResidentKeyRequirementDiscouraged, uv: protocol.VerificationDiscouraged}
						if rk {
							r.residentKey = protocol.ResidentKeyRequirementRequired
						}
						if pin != "" {
							r.uv = protocol.VerificationRequired
						}
						cred, err := register(t, kit, rp, u, r)
						if err != nil {
							t.Fatalf("create: %v", err)
						}
						if cred.AttestationFormat != f.want {
							t.Errorf("attestation format %q, want %q", cred.AttestationFormat, f.want)
						}
						if f.conveyance == protocol.PreferNoAttestation && !bytes.Equal(cred.Authenticator.AAGUID, make([]byte, 16)) {
							t.Errorf("AAGUID %x with attestation none: want zeros (WebAuthn L3 section 5.1.3)", cred.Authenticator.AAGUID)
						}
						if cred.Flags.UserVerified != (pin != "") {
							t.Errorf("UV flag %v with pin=%v", cred.Flags.UserVerified, pin != "")
						}
						last := cred.Authenticator.SignCount
						for i := 0; i < 2; i++ {
							var got *webauthn.Credential
							if rk {
								got, err = login(t, kit, rp, nil, []*webauthntest.User{u}, r.uv)
							} else {
								got, err = login(t, kit, rp, u, nil, r.uv)
							}
							if err != nil {
								t.Fatalf("get: %v", err)
							}
							if got.Authenticator.SignCount <= last {
								t.Fatalf("counter %d after %d: must increase", got.Authenticator.SignCount, last)
							}
							last = got.Authenticator.SignCount
						}
					})
				}
			}
		}
	}
}

// wantDOMError checks that err is the DOMException name.
func wantDOMError(t *testing.T, err error, name string) {
	t.Helper()
	if got := browser.ErrorName(err); got != name {
		t.Fatalf("error %v (%q), want %s", err, got, name)
	}
}

// TestBrowserErrors checks the failures a relying party's test needs to
// see as a browser reports them.
func TestBrowserErrors(t *testing.T) {
	rp := newRP(t)
	t.Run("wrong origin for the RP ID", func(t *testing.T) {
		kit := vkeytest.New(t)
		opts, _, err := rp.BeginRegistration(webauthntest.NewUser("alice"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = kit.Create(opts, "https://evil.example.net")
		wantDOMError(t, err, browser.SecurityError)
	})
	t.Run("excluded credential", func(t *testing.T) {
		kit := vkeytest.New(t)
		u := webauthntest.NewUser("alice")
		if _, err := register(t, kit, rp, u, registration{}); err != nil {
			t.Fatal(err)
		}
		_, err := register(t, kit, rp, u, registration{})
		wantDOMError(t, err, browser.InvalidStateError)
	})
	t.Run("no matching credential", func(t *testing.T) {
		other := vkeytest.New(t)
		u := webauthntest.NewUser("alice")
		if _, err := register(t, other, rp, u, registration{}); err != nil {
			t.Fatal(err)
		}
		_, err := login(t, vkeytest.New(t), rp, u, nil, protocol.VerificationDiscouraged)
		wantDOMError(t, err, browser.NotAllowedError)
	})
	t.Run("UV required on a key without PIN or UV", func(t *testing.T) {
		_, err := register(t, vkeytest.New(t), rp, webauthntest.NewUser("alice"), registration{uv: protocol.VerificationRequired})
		wantDOMError(t, err, browser.NotAllowedError)
	})
	t.Run("denied touch", func(t *testing.T) {
		kit := vkeytest.New(t)
		kit.SetPresence(false)
		_, err := register(t, kit, rp, webauthntest.NewUser("alice"), registration{})
		wantDOMError(t, err, browser.NotAllowedError)
	})
	t.Run("wrong PIN", func(t *testing.T) {
		kit := vkeytest.New(t, vkeytest.Options{PIN: "4321", BrowserPIN: "0000"})
		_, err := register(t, kit, rp, webauthntest.NewUser("alice"), registration{uv: protocol.VerificationRequired})
		wantDOMError(t, err, browser.NotAllowedError)
	})
	t.Run("built-in UV fails", func(t *testing.T) {
		kit := vkeytest.New(t, vkeytest.Options{BuiltInUV: true})
		kit.SetUV(false)
		_, err := register(t, kit, rp, webauthntest.NewUser("alice"), registration{uv: protocol.VerificationRequired})
		wantDOMError(t, err, browser.NotAllowedError)
	})
	t.Run("built-in UV succeeds", func(t *testing.T) {
		kit := vkeytest.New(t, vkeytest.Options{BuiltInUV: true})
		cred, err := register(t, kit, rp, webauthntest.NewUser("alice"), registration{uv: protocol.VerificationRequired})
		if err != nil {
			t.Fatal(err)
		}
		if !cred.Flags.UserVerified {
			t.Error("UV flag not set after built-in user verification")
		}
	})
}

// TestGoWebAuthnAcceptsCrossOrigin: a registration from a frame of
// login.example.com inside shop.example.net carries crossOrigin and
// topOrigin, which go-webauthn checks against its allowed top origins.
func TestGoWebAuthnAcceptsCrossOrigin(t *testing.T) {
	for _, top := range []string{"https://shop.example.net", "https://evil.example.org"} {
		w, err := webauthn.New(&webauthn.Config{RPID: "example.com", RPDisplayName: "Example", RPOrigins: []string{origin},
			RPAllowCrossOrigin: true, RPTopOrigins: []string{"https://shop.example.net"}, RPTopOriginVerificationMode: protocol.TopOriginExplicitVerificationMode})
		if err != nil {
			t.Fatal(err)
		}
		u := webauthntest.NewUser("alice")
		opts, session, err := w.BeginRegistration(u)
		if err != nil {
			t.Fatal(err)
		}
		optsJSON, _ := json.Marshal(opts)
		kit := vkeytest.New(t)
		resp, err := kit.Browser().CreateInFrame(context.Background(), optsJSON, origin, top)
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := protocol.ParseCredentialCreationResponseBytes(resp.JSON())
		if err != nil {
			t.Fatal(err)
		}
		_, err = w.CreateCredential(u, *session, parsed)
		if allowed := top == "https://shop.example.net"; (err == nil) != allowed {
			t.Fatalf("top origin %s: go-webauthn says %v", top, err)
		}
	}
}
