package vkey_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/vkey-dev/vkey"
	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/ctap2/client"
	"github.com/vkey-dev/vkey/internal/procout"
	"github.com/vkey-dev/vkey/presence"
)

// TestLogObserverLines drives an in-process key through makeCredential,
// getAssertion with hmac-secret, a U2F register and authenticate (named by
// their application ID's hash, not an empty rp), the extensions each
// command acted on and answered (only names the key implements), a relying party whose ID
// holds terminal escapes, a touch nobody gives, and setting and changing
// the PIN, and checks the exact `--verbose` lines (vkey.LogObserver): what
// comes from a request is escaped (internal/escape), and no secret (the
// PIN, the pinUvAuthToken, the hmac-secret salts) is written.
func TestLogObserverLines(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs procout.Buffer // the key's goroutines write to it
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		}}))
	k, err := vkey.New(ctx, vkey.Options{Logger: logger, PresenceTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	c := client.New(k.Direct())
	register := func(rpID string) []byte {
		t.Helper()
		req := &ctap2.MakeCredentialRequest{ClientDataHash: make([]byte, 32), RP: &ctap2.RPEntity{ID: rpID},
			User: &ctap2.UserEntity{ID: []byte{1}, Name: "alice"}, PubKeyCredParams: []ctap2.CredentialParameter{{Type: "public-key", Alg: -7}},
			Options: map[string]bool{"rk": true}, Extensions: ctap2.MakeCredentialExtensions{HMACSecret: true, CredProtect: 1,
				// An extension the key does not implement: its name, the
				// request's text, never reaches the log.
				Other: map[string][]byte{"x-\x1b[2Jhidden": {0xf5}}}}
		att, err := c.MakeCredential(ctx, req)
		if err != nil {
			t.Fatalf("makeCredential at %q: %v", rpID, err)
		}
		id, _ := att.CredentialID()
		return id
	}

	id := register("example.com")
	salt := bytes.Repeat([]byte{0x5a, 0xa5, 0x3c, 0xc3}, 8)
	hs, err := c.NewHMACSecret(ctx, 2, salt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetAssertion(ctx, &ctap2.GetAssertionRequest{RPID: "example.com", ClientDataHash: make([]byte, 32),
		AllowList:  []ctap2.CredentialDescriptor{{Type: "public-key", ID: id}},
		Extensions: ctap2.GetAssertionExtensions{HMACSecret: hs.Input}}); err != nil {
		t.Fatalf("getAssertion: %v", err)
	}

	app, chal := sha256.Sum256([]byte("https://u2f.example.com")), sha256.Sum256([]byte("challenge"))
	apdu := append([]byte{0, ctap2.U2FRegister, 0, 0, 0, 0, 64}, append(chal[:], app[:]...)...)
	u2f := func(what string, apdu []byte) []byte {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			out := k.Authenticator.HandleMSG(ctx, apdu)
			if bytes.HasSuffix(out, []byte{0x90, 0x00}) {
				return out
			}
			if !bytes.HasSuffix(out, []byte{0x69, 0x85}) || time.Now().After(deadline) {
				t.Fatalf("%s: %x", what, out)
			}
		}
	}
	reg := u2f("U2F register", apdu)
	// 0x05, the 65-byte public key, the key handle's length and handle.
	handle := reg[67 : 67+int(reg[66])]
	auth := append(append(chal[:], app[:]...), byte(len(handle)))
	auth = append(auth, handle...)
	u2f("U2F authenticate", append([]byte{0, ctap2.U2FAuthenticate, 3, 0, 0, 0, byte(len(auth))}, auth...))

	// ESC [2J clears the screen, ESC ]0; retitles the terminal, U+202E
	// reverses the text after it; a backslash must not forge an escape.
	hostile := "evil.example\x1b[2J\x1b]0;pwned\x07\n\u202emoc.elpmaxe\\x41"
	register(hostile)

	k.Presence.SetMode(presence.Touch) // nobody touches: the wait times out
	req := &ctap2.MakeCredentialRequest{ClientDataHash: make([]byte, 32), RP: &ctap2.RPEntity{ID: "example.org"},
		User: &ctap2.UserEntity{ID: []byte{2}, Name: "bob"}, PubKeyCredParams: []ctap2.CredentialParameter{{Type: "public-key", Alg: -7}}}
	if _, err := c.MakeCredential(ctx, req); !errors.Is(err, ctap2.ErrUserActionTimeout) {
		t.Fatalf("makeCredential without a touch: %v, want %v", err, ctap2.ErrUserActionTimeout)
	}
	k.Presence.SetMode(presence.Auto)

	const pin, newPIN = "Secret-PIN-4711", "Other-PIN-0815"
	if err := c.SetPIN(ctx, 2, pin); err != nil {
		t.Fatal(err)
	}
	tok, err := c.PINToken(ctx, 2, pin, ctap2.PermGetAssertion, "example.com")
	if err != nil {
		t.Fatal(err)
	}
	ga := &ctap2.GetAssertionRequest{RPID: "example.com", ClientDataHash: make([]byte, 32)}
	ga.PinUvAuthParam, ga.PinUvAuthProtocol = tok.Param(ga.ClientDataHash), tok.Version()
	if _, err := c.GetAssertion(ctx, ga); err != nil {
		t.Fatalf("getAssertion with a PIN token: %v", err)
	}
	if err := c.ChangePIN(ctx, 2, pin, newPIN); err != nil {
		t.Fatal(err)
	}

	got := logs.String()
	want := []string{
		// Automatic presence answers at once: no presence requested.
		`level=DEBUG msg="presence answered" command=makeCredential err=<nil>`,
		`level=DEBUG msg="credential created" rp=example.com discoverable=true u2f=false ext=credProtect,hmac-secret ext_out=credProtect,hmac-secret`,
		`level=DEBUG msg="presence answered" command=getAssertion err=<nil>`,
		`level=DEBUG msg="credential asserted" rp=example.com counter=2 up=true uv=false u2f=false ext=hmac-secret ext_out=hmac-secret`,
		`level=DEBUG msg="presence answered" command="U2F register" err=<nil>`,
		// U2F names the relying party only by its application ID's hash.
		`level=DEBUG msg="credential created" app=` + hex.EncodeToString(app[:8]) + ` discoverable=false u2f=true`,
		`level=DEBUG msg="presence answered" command="U2F authenticate" err=<nil>`,
		`level=DEBUG msg="credential asserted" app=` + hex.EncodeToString(app[:8]) + ` counter=1 up=true uv=false u2f=true`,
		`level=DEBUG msg="presence answered" command=makeCredential err=<nil>`,
		`level=DEBUG msg="credential created" rp=evil.example\x1b[2J\x1b]0;pwned\x07\x0a\u202emoc.elpmaxe\\x41 discoverable=true u2f=false ext=credProtect,hmac-secret ext_out=credProtect,hmac-secret`,
		`level=DEBUG msg="presence requested" command=makeCredential rp=example.org`,
		`level=DEBUG msg="presence timed out" command=makeCredential`,
		`level=DEBUG msg="PIN set"`,
		`level=DEBUG msg="presence answered" command=getAssertion err=<nil>`,
		`level=DEBUG msg="credential asserted" rp=example.com counter=3 up=true uv=true u2f=false`,
		`level=DEBUG msg="PIN changed"`,
	}
	if lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n"); strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("log lines:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	for _, r := range got {
		if (r < 0x20 && r != '\n') || r == 0x7f || r == '\u202e' {
			t.Errorf("the log holds %U, unescaped", r)
		}
	}
	if strings.Contains(got, "hidden") {
		t.Error("the log names an extension the key does not implement")
	}
	secrets := map[string][]byte{"PIN": []byte(pin), "new PIN": []byte(newPIN), "salt": salt, "pinUvAuthParam": ga.PinUvAuthParam}
	for name, s := range secrets {
		for _, form := range []string{string(s), hex.EncodeToString(s), base64.StdEncoding.EncodeToString(s), base64.RawURLEncoding.EncodeToString(s)} {
			if strings.Contains(strings.ToLower(got), strings.ToLower(form)) {
				t.Errorf("the log holds the %s (%q)", name, form)
			}
		}
	}
}
