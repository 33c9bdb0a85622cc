package browser_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vkey-dev/vkey"
	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/ctap2/browser"
	"github.com/vkey-dev/vkey/ctap2/client"
	"github.com/vkey-dev/vkey/keystore"
)

// recorder is a transport that remembers the list lengths of each
// makeCredential and getAssertion it carries.
type recorder struct {
	t     client.Transport
	mu    sync.Mutex
	lists []int
}

func (r *recorder) CBOR(ctx context.Context, msg []byte) ([]byte, error) {
	if len(msg) > 1 && (msg[0] == ctap2.CmdMakeCredential || msg[0] == ctap2.CmdGetAssertion) {
		var m map[int]any
		if err := ctap2.Unmarshal(msg[1:], &m); err == nil {
			key := 5 // excludeList
			if msg[0] == ctap2.CmdGetAssertion {
				key = 3 // allowList
			}
			l, _ := m[key].([]any)
			r.mu.Lock()
			r.lists = append(r.lists, len(l))
			r.mu.Unlock()
		}
	}
	return r.t.CBOR(ctx, msg)
}

type fixture struct {
	key *vkey.Key
	rec *recorder
	c   *browser.Client
}

func newFixture(t *testing.T, opts vkey.Options, pin string) *fixture {
	t.Helper()
	k, err := vkey.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{t: k.Direct()}
	return &fixture{key: k, rec: rec, c: browser.New(rec, browser.Options{PIN: pin})}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func random(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// creation is creation options JSON for RP example.com with extra members.
func creation(extra string) []byte {
	s := `{"rp":{"id":"example.com","name":"Example"},"user":{"id":"` + b64([]byte("user-1")) + `","name":"alice","displayName":"Alice"},` +
		`"challenge":"` + b64(random(32)) + `","pubKeyCredParams":[{"type":"public-key","alg":-7}]`
	if extra != "" {
		s += "," + extra
	}
	return []byte(s + "}")
}

func request(extra string) []byte {
	s := `{"rpId":"example.com","challenge":"` + b64(random(32)) + `"`
	if extra != "" {
		s += "," + extra
	}
	return []byte(s + "}")
}

const origin = "https://example.com"

func descriptors(ids ...[]byte) string {
	var parts []string
	for _, id := range ids {
		parts = append(parts, `{"type":"public-key","id":"`+b64(id)+`"}`)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

func TestOriginAndRPID(t *testing.T) {
	f := newFixture(t, vkey.Options{}, "")
	for _, tc := range []struct {
		origin, rpID, want string
	}{
		{"https://example.com", "example.com", ""},
		{"https://login.example.com", "example.com", ""},
		{"https://login.example.com:8443", "example.com", ""},
		{"http://localhost:8080", "localhost", ""},
		{"http://localhost", "", ""},
		{"https://example.com", "", ""},
		{"http://example.com", "example.com", browser.SecurityError},
		{"https://example.org", "example.com", browser.SecurityError},
		{"https://badexample.com", "example.com", browser.SecurityError},
		{"https://example.com", "login.example.com", browser.SecurityError},
		{"https://foo.github.io", "github.io", browser.SecurityError},
		{"https://example.co.uk", "co.uk", browser.SecurityError},
		{"https://127.0.0.1", "127.0.0.1", browser.SecurityError},
		{"https://[::1]", "", browser.SecurityError},
		{"null", "example.com", browser.SecurityError},
		{"https://example.com/path", "example.com", browser.SecurityError},
	} {
		t.Run(tc.origin+"/"+tc.rpID, func(t *testing.T) {
			opts := strings.Replace(string(creation("")), `"id":"example.com",`, "", 1)
			if tc.rpID != "" {
				opts = strings.Replace(opts, `"rp":{`, `"rp":{"id":"`+tc.rpID+`",`, 1)
			}
			_, err := f.c.Create(context.Background(), []byte(opts), tc.origin)
			if got := browser.ErrorName(err); got != tc.want {
				t.Fatalf("got %v (%q), want %q", err, got, tc.want)
			}
		})
	}
}

func TestClientDataJSON(t *testing.T) {
	f := newFixture(t, vkey.Options{}, "")
	resp, err := f.c.CreateInFrame(context.Background(), creation(""), "https://login.example.com:8443", "https://shop.example.net")
	if err != nil {
		t.Fatal(err)
	}
	var cd map[string]any
	if err := json.Unmarshal(resp.Response.ClientDataJSON, &cd); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"type": "webauthn.create", "origin": "https://login.example.com:8443", "crossOrigin": true, "topOrigin": "https://shop.example.net"}
	for k, v := range want {
		if cd[k] != v {
			t.Errorf("clientDataJSON %s = %v, want %v", k, cd[k], v)
		}
	}
	// Same-origin frames are not cross-origin.
	resp, err = f.c.CreateInFrame(context.Background(), creation(""), origin, origin+":443")
	if err != nil {
		t.Fatal(err)
	}
	if s := string(resp.Response.ClientDataJSON); !strings.Contains(s, `"crossOrigin":false`) || strings.Contains(s, "topOrigin") {
		t.Errorf("same-origin clientDataJSON %s", s)
	}
}

func TestWrappedOptionsAndAlgorithms(t *testing.T) {
	f := newFixture(t, vkey.Options{}, "")
	wrapped := `{"publicKey":` + strings.Replace(string(creation("")), `{"type":"public-key","alg":-7}`, `{"type":"public-key","alg":-65535},{"type":"public-key","alg":-8}`, 1) + `}`
	resp, err := f.c.Create(context.Background(), []byte(wrapped), origin)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Response.PublicKeyAlgorithm != -8 {
		t.Errorf("algorithm %d: want -8, the first the key supports", resp.Response.PublicKeyAlgorithm)
	}
	if resp.AuthenticatorAttachment != "cross-platform" || resp.Type != "public-key" || resp.ID != b64(resp.RawID) {
		t.Errorf("response %+v", resp)
	}
	// RS1 (-65535): registered in COSE, offered by no vkey.
	rs1Only := strings.Replace(string(creation("")), `"alg":-7`, `"alg":-65535`, 1)
	_, err = f.c.Create(context.Background(), []byte(rs1Only), origin)
	if browser.ErrorName(err) != browser.NotSupportedError {
		t.Fatalf("RS1 only: %v, want NotSupportedError", err)
	}
	_, err = f.c.Create(context.Background(), []byte(`{"rp":{"name":"x"},"challenge":"AA"}`), origin)
	if browser.ErrorName(err) != browser.TypeError {
		t.Fatalf("no user.id: %v, want TypeError", err)
	}
}

// TestLongListsArePreflighted: excludeCredentials and allowCredentials
// longer than maxCredentialCountInList are probed in batches by silent
// getAssertions, and no request carries more than the key takes.
func TestLongListsArePreflighted(t *testing.T) {
	f := newFixture(t, vkey.Options{}, "")
	reg, err := f.c.Create(context.Background(), creation(""), origin)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := f.key.Authenticator.Info()
	max := int(info.MaxCredentialCountInList)
	var ids [][]byte
	for i := 0; i < 2*max+5; i++ {
		ids = append(ids, random(64))
	}
	ids[2*max+1] = reg.RawID // in the third batch

	f.rec.lists = nil
	_, err = f.c.Create(context.Background(), creation(`"excludeCredentials":`+descriptors(ids...)), origin)
	if browser.ErrorName(err) != browser.InvalidStateError {
		t.Fatalf("excluded credential in a long list: %v, want InvalidStateError", err)
	}
	for _, n := range f.rec.lists {
		if n > max {
			t.Fatalf("a request carried %d credentials; the key takes %d", n, max)
		}
	}
	if n := len(f.rec.lists); n < 4 || f.rec.lists[n-1] != 1 {
		// At least three pre-flights, then a makeCredential that excludes
		// the one credential found, so that the key asks for a touch.
		t.Errorf("requests with lists: %v, want pre-flights and a makeCredential excluding one", f.rec.lists)
	}

	f.rec.lists = nil
	got, err := f.c.Get(context.Background(), request(`"allowCredentials":`+descriptors(ids...)), origin)
	if err != nil {
		t.Fatalf("long allowCredentials: %v", err)
	}
	if !bytes.Equal(got.RawID, reg.RawID) {
		t.Errorf("signed with %x, want %x", got.RawID, reg.RawID)
	}
	for _, n := range f.rec.lists {
		if n > max {
			t.Fatalf("a request carried %d credentials; the key takes %d", n, max)
		}
	}
	_, err = f.c.Get(context.Background(), request(`"allowCredentials":`+descriptors(ids[:2*max]...)), origin)
	if browser.ErrorName(err) != browser.NotAllowedError {
		t.Fatalf("long list without the credential: %v, want NotAllowedError", err)
	}
	_, err = f.c.Create(context.Background(), creation(`"excludeCredentials":`+descriptors(ids[:2*max]...)), origin)
	if err != nil {
		t.Fatalf("long exclude list without a held credential: %v", err)
	}
}

func TestExtensions(t *testing.T) {
	f := newFixture(t, vkey.Options{PIN: "4321"}, "4321")
	ctx := context.Background()
	reg, err := f.c.Create(ctx, creation(`"authenticatorSelection":{"residentKey":"required","userVerification":"required"},`+
		`"extensions":{"credProps":true,"prf":{},"hmacCreateSecret":true,"largeBlob":{"support":"required"},"credBlob":"`+b64([]byte("blob!"))+`",`+
		`"credentialProtectionPolicy":"userVerificationRequired","enforceCredentialProtectionPolicy":true,"minPinLength":true,"unknownExt":{"x":1}}`), origin)
	if err != nil {
		t.Fatal(err)
	}
	r := reg.ClientExtensionResults
	if r.CredProps == nil || !r.CredProps.RK || r.PRF == nil || r.PRF.Enabled == nil || !*r.PRF.Enabled ||
		r.HMACCreateSecret == nil || !*r.HMACCreateSecret || r.LargeBlob == nil || r.LargeBlob.Supported == nil || !*r.LargeBlob.Supported ||
		r.CredBlob == nil || !*r.CredBlob {
		t.Fatalf("registration extension results %s", reg.JSON())
	}
	allow := `"allowCredentials":` + descriptors(reg.RawID)

	// PRF: deterministic per input, the two inputs differ, and equal to
	// hmac-secret with the salts hashed as section 10.1.4 says.
	in1, in2 := []byte("input one"), []byte("input two")
	prf := func() *browser.PRFValues {
		got, err := f.c.Get(ctx, request(allow+`,"extensions":{"prf":{"eval":{"first":"`+b64(in1)+`","second":"`+b64(in2)+`"}}}`), origin)
		if err != nil {
			t.Fatal(err)
		}
		if got.ClientExtensionResults.PRF == nil || got.ClientExtensionResults.PRF.Results == nil {
			t.Fatalf("no PRF results: %s", got.JSON())
		}
		return got.ClientExtensionResults.PRF.Results
	}
	a, b := prf(), prf()
	if !bytes.Equal(a.First, b.First) || !bytes.Equal(a.Second, b.Second) || bytes.Equal(a.First, a.Second) || len(a.First) != 32 {
		t.Fatalf("PRF results %x %x then %x %x", a.First, a.Second, b.First, b.Second)
	}
	salt := func(in []byte) string {
		h := sha256Sum(append([]byte("WebAuthn PRF\x00"), in...))
		return b64(h)
	}
	got, err := f.c.Get(ctx, request(allow+`,"extensions":{"hmacGetSecret":{"salt1":"`+salt(in1)+`","salt2":"`+salt(in2)+`"}}`), origin)
	if err != nil {
		t.Fatal(err)
	}
	h := got.ClientExtensionResults.HMACGetSecret
	if h == nil || !bytes.Equal(h.Output1, a.First) || !bytes.Equal(h.Output2, a.Second) {
		t.Fatalf("hmacGetSecret with the PRF salts %s, want the PRF results", got.JSON())
	}
	// evalByCredential picks the credential's own input.
	byCred := fmt.Sprintf(`"prf":{"eval":{"first":"%s"},"evalByCredential":{"%s":{"first":"%s"}}}`, b64([]byte("other")), b64(reg.RawID), b64(in1))
	got, err = f.c.Get(ctx, request(allow+`,"extensions":{`+byCred+`}`), origin)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.ClientExtensionResults.PRF.Results.First, a.First) {
		t.Fatal("evalByCredential did not use the credential's input")
	}
	_, err = f.c.Get(ctx, request(`"extensions":{`+byCred+`}`), origin)
	if browser.ErrorName(err) != browser.NotSupportedError {
		t.Fatalf("evalByCredential without allowCredentials: %v, want NotSupportedError", err)
	}

	// credBlob, largeBlob write then read.
	got, err = f.c.Get(ctx, request(allow+`,"extensions":{"getCredBlob":true,"largeBlob":{"write":"`+b64([]byte("a large blob"))+`"}}`), origin)
	if err != nil {
		t.Fatal(err)
	}
	res := got.ClientExtensionResults
	if res.GetCredBlob == nil || string(*res.GetCredBlob) != "blob!" || res.LargeBlob == nil || res.LargeBlob.Written == nil || !*res.LargeBlob.Written {
		t.Fatalf("getCredBlob and largeBlob write: %s", got.JSON())
	}
	got, err = f.c.Get(ctx, request(`"extensions":{"largeBlob":{"read":true}}`), origin)
	if err != nil {
		t.Fatal(err)
	}
	if got.ClientExtensionResults.LargeBlob == nil || string(got.ClientExtensionResults.LargeBlob.Blob) != "a large blob" {
		t.Fatalf("largeBlob read: %s", got.JSON())
	}
	// credProtect level 3: without user verification the key does not
	// reveal the credential.
	nopin := browser.New(f.key.Direct(), browser.Options{})
	_, err = nopin.Get(ctx, request(allow+`,"userVerification":"discouraged"`), origin)
	if browser.ErrorName(err) != browser.NotAllowedError {
		t.Fatalf("credProtect=3 credential without UV: %v, want NotAllowedError", err)
	}
}

// TestAccountChooser: several discoverable credentials go through
// SelectAccount.
func TestAccountChooser(t *testing.T) {
	f := newFixture(t, vkey.Options{}, "")
	ctx := context.Background()
	var regs []*browser.RegistrationResponse
	for _, name := range []string{"alice", "bob"} {
		opts := strings.Replace(string(creation(`"authenticatorSelection":{"residentKey":"required"}`)), b64([]byte("user-1")), b64([]byte(name)), 1)
		reg, err := f.c.Create(ctx, []byte(opts), origin)
		if err != nil {
			t.Fatal(err)
		}
		regs = append(regs, reg)
	}
	var offered []string
	c := browser.New(f.key.Direct(), browser.Options{SelectAccount: func(users []browser.User) int {
		for i, u := range users {
			offered = append(offered, string(u.UserID))
			if string(u.UserID) == "alice" {
				return i
			}
		}
		return -1
	}})
	got, err := c.Get(ctx, request(""), origin)
	if err != nil {
		t.Fatal(err)
	}
	if len(offered) != 2 || !bytes.Equal(got.RawID, regs[0].RawID) || string(got.Response.UserHandle) != "alice" {
		t.Fatalf("offered %v, signed with %x (user %q)", offered, got.RawID, got.Response.UserHandle)
	}
}

func sha256Sum(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:]
}

// TestStaleInfo: a client that read getInfo before another client set a
// PIN reads it again when a ceremony fails, and runs the ceremony once
// more with the PIN, as a browser reading getInfo every time would.
func TestStaleInfo(t *testing.T) {
	ctx := context.Background()
	for _, extra := range []string{`"authenticatorSelection":{"userVerification":"required"}`, `"authenticatorSelection":{"residentKey":"required","userVerification":"discouraged"}`} {
		f := newFixture(t, vkey.Options{}, "4321")
		if _, err := f.c.Create(ctx, creation(""), origin); err != nil {
			t.Fatal(err)
		}
		if err := client.New(f.key.Direct()).SetPIN(ctx, 2, "4321"); err != nil {
			t.Fatal(err)
		}
		reg, err := f.c.Create(ctx, creation(extra), origin)
		if err != nil {
			t.Fatalf("%s after a PIN was set elsewhere: %v", extra, err)
		}
		if reg.Response.AuthenticatorData[32]&0x04 == 0 {
			t.Errorf("%s: no UV flag", extra)
		}
	}
}

// untouched is a browser in front of a key nobody touches: presence waits
// until the request is cancelled.
func untouched(t *testing.T) *browser.Client {
	t.Helper()
	a, err := ctap2.New(ctap2.Options{Store: keystore.NewMemory(0), Presence: ctap2.PresenceFunc(func(ctx context.Context, _ ctap2.PresenceRequest) error {
		<-ctx.Done()
		return ctx.Err()
	})})
	if err != nil {
		t.Fatal(err)
	}
	return browser.New(client.Direct{A: a}, browser.Options{})
}

// TestTimeout: a touch that never comes ends with NotAllowedError when the
// options' timeout passes (WebAuthn L3 section 5.1.3 step 23), and a
// cancelled context with AbortError.
func TestTimeout(t *testing.T) {
	c := untouched(t)
	start := time.Now()
	_, err := c.Create(context.Background(), creation(`"timeout":100`), origin)
	if browser.ErrorName(err) != browser.NotAllowedError {
		t.Fatalf("timeout: %v, want NotAllowedError", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the 100 ms timeout took %v", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	_, err = c.Create(ctx, creation(""), origin)
	if browser.ErrorName(err) != browser.AbortError {
		t.Fatalf("cancelled: %v, want AbortError", err)
	}
}

func TestTimeoutIsDeadlineExceeded(t *testing.T) {
	_, err := untouched(t).Create(context.Background(), creation(`"timeout":50`), origin)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a timed-out ceremony's error %v does not say context.DeadlineExceeded (the CLI's exit status 6 needs it)", err)
	}
}

// TestPublicKeyVerifiesAssertions: response.publicKey (SPKI DER) and
// publicKeyAlgorithm are the credential's key: an assertion's signature
// over authenticatorData || SHA-256(clientDataJSON) verifies with them,
// for ES256 and EdDSA.
func TestPublicKeyVerifiesAssertions(t *testing.T) {
	f := newFixture(t, vkey.Options{}, "")
	ctx := context.Background()
	for _, alg := range []int64{-7, -8} {
		opts := strings.Replace(string(creation("")), `"alg":-7`, fmt.Sprintf(`"alg":%d`, alg), 1)
		reg, err := f.c.Create(ctx, []byte(opts), origin)
		if err != nil {
			t.Fatal(err)
		}
		if reg.Response.PublicKeyAlgorithm != alg {
			t.Fatalf("publicKeyAlgorithm %d, want %d", reg.Response.PublicKeyAlgorithm, alg)
		}
		pub, err := x509.ParsePKIXPublicKey(reg.Response.PublicKey)
		if err != nil {
			t.Fatalf("publicKey is not SPKI DER: %v", err)
		}
		got, err := f.c.Get(ctx, request(`"allowCredentials":`+descriptors(reg.RawID)), origin)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.Sum256(got.Response.ClientDataJSON)
		signed := append(append([]byte(nil), got.Response.AuthenticatorData...), h[:]...)
		ok := false
		switch k := pub.(type) {
		case *ecdsa.PublicKey:
			d := sha256.Sum256(signed)
			ok = alg == -7 && ecdsa.VerifyASN1(k, d[:], got.Response.Signature)
		case ed25519.PublicKey:
			ok = alg == -8 && ed25519.Verify(k, signed, got.Response.Signature)
		}
		if !ok {
			t.Fatalf("alg %d: the signature does not verify with response.publicKey (%T)", alg, pub)
		}
	}
}

// TestResidentKeyPreferred: residentKey "preferred" makes a discoverable
// credential when the user can verify, and a non-discoverable one on a
// key with a PIN the browser does not know, rather than failing.
func TestResidentKeyPreferred(t *testing.T) {
	ctx := context.Background()
	pref := `"authenticatorSelection":{"residentKey":"preferred","userVerification":"discouraged"},"extensions":{"credProps":true}`
	for _, tc := range []struct {
		keyPIN, browserPIN string
		rk                 bool
	}{{"", "", true}, {"4321", "4321", true}, {"4321", "", false}} {
		f := newFixture(t, vkey.Options{PIN: tc.keyPIN}, tc.browserPIN)
		reg, err := f.c.Create(ctx, creation(pref), origin)
		if err != nil {
			t.Fatalf("key PIN %q, browser PIN %q: %v", tc.keyPIN, tc.browserPIN, err)
		}
		if reg.ClientExtensionResults.CredProps == nil || reg.ClientExtensionResults.CredProps.RK != tc.rk {
			t.Errorf("key PIN %q, browser PIN %q: credProps %s, want rk=%v", tc.keyPIN, tc.browserPIN, reg.JSON(), tc.rk)
		}
	}
}

// TestLongListsWithPIN: the pre-flights of a ceremony with user
// verification use its token, and the ceremony itself still verifies.
func TestLongListsWithPIN(t *testing.T) {
	f := newFixture(t, vkey.Options{PIN: "4321"}, "4321")
	ctx := context.Background()
	uv := `"userVerification":"required"`
	reg, err := f.c.Create(ctx, creation(`"authenticatorSelection":{`+uv+`}`), origin)
	if err != nil {
		t.Fatal(err)
	}
	var ids [][]byte
	for i := 0; i < 40; i++ {
		ids = append(ids, random(48))
	}
	ids[37] = reg.RawID
	got, err := f.c.Get(ctx, request(uv+`,"allowCredentials":`+descriptors(ids...)), origin)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.RawID, reg.RawID) || got.Response.AuthenticatorData[32]&0x05 != 0x05 {
		t.Fatalf("signed with %x, flags %#x: want the listed credential, UP and UV", got.RawID, got.Response.AuthenticatorData[32])
	}
	_, err = f.c.Create(ctx, creation(`"authenticatorSelection":{`+uv+`},"excludeCredentials":`+descriptors(ids...)), origin)
	if browser.ErrorName(err) != browser.InvalidStateError {
		t.Fatalf("excluded credential with a PIN: %v, want InvalidStateError", err)
	}
}
