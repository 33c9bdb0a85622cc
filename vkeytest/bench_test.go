package vkeytest_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"

	"github.com/descope/virtualwebauthn"
	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/ctap2/client"
	"github.com/vkey-dev/vkey/internal/benchpair"
	"github.com/vkey-dev/vkey/vkeytest"
)

// benchSetup is a kit with one ES256 credential of example.com and the
// request options of a sign-in with it.
func benchSetup(b *testing.B) (*vkeytest.Kit, []byte, []byte) {
	b.Helper()
	kit := vkeytest.New(b)
	reg, err := kit.CreateResponse(`{"rp":{"id":"example.com","name":"Example"},"user":{"id":"dXNlcg","name":"alice","displayName":"Alice"},`+
		`"challenge":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8","pubKeyCredParams":[{"type":"public-key","alg":-7}]}`, "https://example.com")
	if err != nil {
		b.Fatal(err)
	}
	options := []byte(fmt.Sprintf(`{"publicKey":{"challenge":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8","rpId":"example.com",`+
		`"allowCredentials":[{"type":"public-key","id":"%s"}],"userVerification":"discouraged","timeout":60000}}`, reg.ID))
	return kit, options, reg.RawID
}

// BenchmarkKitGet is the speed goal of issue 12: a sign-in through the kit
// (options JSON in, response JSON out) against the same assertion through
// ctap2/client directly; ratio at most 1.3.
func BenchmarkKitGet(b *testing.B) {
	kit, options, id := benchSetup(b)
	c := client.New(client.Direct{A: kit.Authenticator()})
	hash := sha256.Sum256([]byte(`{"type":"webauthn.get"}`))
	req := &ctap2.GetAssertionRequest{RPID: "example.com", ClientDataHash: hash[:],
		AllowList: []ctap2.CredentialDescriptor{{Type: "public-key", ID: id}}}
	benchpair.Compare(b, 1,
		benchpair.Op{Name: "kit", Run: func() error {
			_, err := kit.Get(options, "https://example.com")
			return err
		}},
		benchpair.Op{Name: "ctap2client", Run: func() error {
			_, err := c.GetAssertion(context.Background(), req)
			return err
		}})
}

// BenchmarkKitGetVsVirtualWebAuthn sets the kit's sign-in beside
// descope/virtualwebauthn's CreateAssertionResponse on the same options
// (which signs without an authenticator); ratio at most 1.5.
func BenchmarkKitGetVsVirtualWebAuthn(b *testing.B) {
	kit, options, _ := benchSetup(b)
	rp := virtualwebauthn.RelyingParty{Name: "Example", ID: "example.com", Origin: "https://example.com"}
	auth := virtualwebauthn.NewAuthenticator()
	cred := virtualwebauthn.NewCredential(virtualwebauthn.KeyTypeEC2)
	auth.AddCredential(cred)
	benchpair.Compare(b, 1,
		benchpair.Op{Name: "kit", Run: func() error {
			_, err := kit.Get(options, "https://example.com")
			return err
		}},
		benchpair.Op{Name: "virtualwebauthn", Run: func() error {
			parsed, err := virtualwebauthn.ParseAssertionOptions(string(options))
			if err != nil {
				return err
			}
			if virtualwebauthn.CreateAssertionResponse(rp, auth, cred, *parsed) == "" {
				return errors.New("empty response")
			}
			return nil
		}})
}
