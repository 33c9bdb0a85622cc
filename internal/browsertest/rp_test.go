package browsertest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/vkey-dev/vkey/internal/webauthntest"
)

// rpOrigin is the guest page's origin: http://localhost is a secure
// context for browsers (W3C Secure Contexts section 3.1), and the kit
// accepts it as they do.
const rpOrigin = "http://localhost:8080"

// sameRP is the relying party that the chromium-two-keys case's browser
// and kit both answer: one go-webauthn configuration, the options it made
// before the boot and the sessions it keeps to verify the responses after.
type sameRP struct {
	w        *webauthn.WebAuthn
	kit      *webauthntest.User // registered by the kit on key b
	browser  *webauthntest.User // registered by Chromium
	sessions map[string]*webauthn.SessionData
}

// newSameRP makes the RP and writes its options into dir/rp: create-kit
// and create-browser (registration, no resident key, UV discouraged,
// attestation none), get-browser, get-b-template and get-kit-template
// (sign-in, UV discouraged; the guest adds the allowCredentials the RP
// would send once it knows the credential ID).
func newSameRP(dir string) (*sameRP, error) {
	w, err := webauthn.New(&webauthn.Config{RPID: "localhost", RPDisplayName: "vkey browser test", RPOrigins: []string{rpOrigin}})
	if err != nil {
		return nil, fmt.Errorf("webauthn config: %w", err)
	}
	rp := &sameRP{w: w, kit: webauthntest.NewUser("kit"), browser: webauthntest.NewUser("chromium"),
		sessions: map[string]*webauthn.SessionData{}}
	if err := os.MkdirAll(filepath.Join(dir, "rp"), 0o755); err != nil {
		return nil, err
	}
	write := func(name string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, "rp", name+".json"), b, 0o644)
	}
	sel := protocol.AuthenticatorSelection{AuthenticatorAttachment: protocol.CrossPlatform,
		ResidentKey: protocol.ResidentKeyRequirementDiscouraged, UserVerification: protocol.VerificationDiscouraged}
	for name, u := range map[string]*webauthntest.User{"create-kit": rp.kit, "create-browser": rp.browser} {
		opts, s, err := w.BeginRegistration(u, webauthn.WithAuthenticatorSelection(sel),
			webauthn.WithConveyancePreference(protocol.PreferNoAttestation))
		if err != nil {
			return nil, fmt.Errorf("begin registration: %w", err)
		}
		rp.sessions[name] = s
		if err := write(name, opts); err != nil {
			return nil, err
		}
	}
	for _, name := range []string{"get-browser", "get-b-template", "get-b-alone-template", "get-kit-template"} {
		opts, s, err := w.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationDiscouraged))
		if err != nil {
			return nil, fmt.Errorf("begin login: %w", err)
		}
		rp.sessions[strings.TrimSuffix(name, "-template")] = s
		if err := write(name, opts); err != nil {
			return nil, err
		}
	}
	return rp, nil
}

// responseOf is the response JSON a page report carries.
func responseOf(r report) ([]byte, error) {
	v, ok := r.Detail["response"]
	if !ok {
		return nil, fmt.Errorf("the %s report carries no response", r.Step)
	}
	return json.Marshal(v)
}

// register verifies a registration response with the session of name and
// adds the credential to u.
func (rp *sameRP) register(u *webauthntest.User, name string, body []byte) (*webauthn.Credential, error) {
	parsed, err := protocol.ParseCredentialCreationResponseBytes(body)
	if err != nil {
		return nil, fmt.Errorf("%s: go-webauthn cannot parse the response: %w", name, webauthntest.Describe(err))
	}
	cred, err := rp.w.CreateCredential(u, *rp.sessions[name], parsed)
	if err != nil {
		return nil, fmt.Errorf("%s: go-webauthn refuses the registration: %w", name, webauthntest.Describe(err))
	}
	if !cred.Flags.UserPresent {
		return nil, fmt.Errorf("%s: flag UP is not set", name)
	}
	u.Credentials = append(u.Credentials, *cred)
	return cred, nil
}

// login verifies an assertion for u's credential credID with the session
// of name, as BeginLogin(u) would have made it (u's ID, the allow list the
// guest added), and stores the new counter. The counter must have moved:
// the key that signed is the one that holds the credential.
func (rp *sameRP) login(u *webauthntest.User, name string, credID []byte, body []byte) (*webauthn.Credential, error) {
	parsed, err := protocol.ParseCredentialRequestResponseBytes(body)
	if err != nil {
		return nil, fmt.Errorf("%s: go-webauthn cannot parse the response: %w", name, webauthntest.Describe(err))
	}
	s := *rp.sessions[name]
	s.UserID = u.ID
	s.AllowedCredentialIDs = [][]byte{credID}
	i := slices.IndexFunc(u.Credentials, func(c webauthn.Credential) bool { return string(c.ID) == string(credID) })
	if i < 0 {
		return nil, fmt.Errorf("%s: the user has no credential %x", name, credID)
	}
	before := u.Credentials[i].Authenticator.SignCount
	cred, err := rp.w.ValidateLogin(u, s, parsed)
	if err != nil {
		return nil, fmt.Errorf("%s: go-webauthn refuses the assertion: %w", name, webauthntest.Describe(err))
	}
	switch {
	case !cred.Flags.UserPresent:
		return nil, fmt.Errorf("%s: flag UP is not set", name)
	case cred.Authenticator.CloneWarning || cred.Authenticator.SignCount <= before:
		return nil, fmt.Errorf("%s: the signature counter went from %d to %d", name, before, cred.Authenticator.SignCount)
	}
	u.Credentials[i] = *cred
	return cred, nil
}

// verifySameRP verifies, in the order they were made, the kit's and
// Chromium's responses of the chromium-two-keys case with the same RP and
// the same checks, and returns the reports of what it found: same-rp
// (every response verified), counters (the order of key b's counter).
func (rp *sameRP) verifySameRP(share string, reports []report) []report {
	const name = "chromium-two-keys"
	got := map[string]report{}
	for _, r := range reports {
		if r.Case == name {
			got[r.Step] = r
		}
	}
	fail := func(err error) []report {
		return []report{{Case: name, Step: "same-rp", Detail: map[string]any{"error": err.Error()}}}
	}
	read := func(file string) ([]byte, error) { return os.ReadFile(filepath.Join(share, "out", file)) }
	page := func(step string) ([]byte, error) {
		r, ok := got[step]
		if !ok || !r.OK {
			return nil, fmt.Errorf("chromium gave no %s response", step)
		}
		return responseOf(r)
	}
	var counters []string
	kitCreate, err := read("kit-create.json")
	if err != nil {
		return fail(err)
	}
	kc, err := rp.register(rp.kit, "create-kit", kitCreate)
	if err != nil {
		return fail(err)
	}
	counters = append(counters, fmt.Sprintf("kit create %d", kc.Authenticator.SignCount))
	b, err := page("rp-create")
	if err != nil {
		return fail(err)
	}
	bc, err := rp.register(rp.browser, "create-browser", b)
	if err != nil {
		return fail(err)
	}
	// key-b: both keys plugged in; key b's response must verify.
	twoKeys := "no response"
	if r, ok := got["key-b"]; ok && !r.OK {
		twoKeys = fmt.Sprint(r.Detail["error"])
	}
	if b, err = page("key-b"); err == nil {
		c, err := rp.login(rp.kit, "get-b", kc.ID, b)
		if err != nil {
			return fail(err)
		}
		counters = append(counters, fmt.Sprintf("chromium get with two keys %d", c.Authenticator.SignCount))
		twoKeys = "key b signed"
	}
	if b, err = page("rp-get"); err != nil {
		return fail(err)
	}
	if _, err := rp.login(rp.browser, "get-browser", bc.ID, b); err != nil {
		return fail(err)
	}
	if b, err = page("key-b-alone"); err != nil {
		return fail(err)
	}
	c, err := rp.login(rp.kit, "get-b-alone", kc.ID, b)
	if err != nil {
		return fail(err)
	}
	counters = append(counters, fmt.Sprintf("chromium get %d", c.Authenticator.SignCount))
	kitGet, err := read("kit-get.json")
	if err != nil {
		return fail(err)
	}
	if c, err = rp.login(rp.kit, "get-kit", kc.ID, kitGet); err != nil {
		return fail(err)
	}
	counters = append(counters, fmt.Sprintf("kit get %d", c.Authenticator.SignCount))
	return []report{{Case: name, Step: "same-rp", OK: true, Detail: map[string]any{
		"counters": strings.Join(counters, ", "), "fields": fieldsDiffer(kitCreate, got["rp-create"].Detail["response"]),
		"keyA": touchRequests(filepath.Join(share, "out", "key-a.log")), "twoKeys": twoKeys}}}
}

// touchRequests sums up what key a (presence touch, never touched) was
// asked for: the requests a browser sends to a key that does not hold the
// credential.
func touchRequests(log string) string {
	b, err := os.ReadFile(log)
	if err != nil {
		return "no log"
	}
	n := map[string]int{}
	var order []string
	for _, line := range strings.Split(string(b), "\n") {
		if _, what, ok := strings.Cut(line, "touch requested ("); ok {
			what, _, _ = strings.Cut(what, ")")
			if n[what] == 0 {
				order = append(order, what)
			}
			n[what]++
		}
	}
	if len(order) == 0 {
		return "no touch requested"
	}
	var out []string
	for _, w := range order {
		out = append(out, fmt.Sprintf("%d× %q", n[w], w))
	}
	return "touch requested: " + strings.Join(out, ", ")
}

// fieldsDiffer names the members of the kit's registration response and
// Chromium's that only one of them has: what an RP could see differ.
func fieldsDiffer(kit []byte, browser any) string {
	var k map[string]any
	_ = json.Unmarshal(kit, &k)
	bm, _ := browser.(map[string]any)
	var diff []string
	walk := func(a, b map[string]any, prefix, who string) {
		for key := range a {
			if _, ok := b[key]; !ok {
				diff = append(diff, who+" only: "+prefix+key)
			}
		}
	}
	walk(k, bm, "", "kit")
	walk(bm, k, "", "chromium")
	kr, _ := k["response"].(map[string]any)
	br, _ := bm["response"].(map[string]any)
	walk(kr, br, "response.", "kit")
	walk(br, kr, "response.", "chromium")
	slices.Sort(diff)
	if len(diff) == 0 {
		return "the same members"
	}
	return strings.Join(diff, "; ")
}
