package ctap2_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/vkey-dev/vkey/ctap2"
)

// recorder is an Observer that keeps what it is told.
type recorder struct {
	mu     sync.Mutex
	events []ctap2.Event
}

func (r *recorder) Observe(_ context.Context, e ctap2.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// take returns the events told since the last take.
func (r *recorder) take() []ctap2.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.events
	r.events = nil
	return out
}

// kinds names the events, presence events included.
func kinds(es []ctap2.Event) []string {
	var out []string
	for _, e := range es {
		out = append(out, fmt.Sprintf("%T", e))
	}
	return out
}

func wantKinds(t *testing.T, step string, got []ctap2.Event, want ...string) {
	t.Helper()
	if g := kinds(got); fmt.Sprint(g) != fmt.Sprint(want) {
		t.Fatalf("%s: events %v, want %v", step, g, want)
	}
}

// TestObserverSeesWhatCommandsDo: each command of a sequence (PIN set,
// registrations, assertions, credential management, wrong PINs, U2F,
// reset) tells the observer exactly the typed events it caused, in order,
// and nothing else; a command that fails with an error tells nothing.
func TestObserverSeesWhatCommandsDo(t *testing.T) {
	rec := &recorder{}
	k := newKey(t, func(o *ctap2.Options) { o.Presence = ctap2.AutoPresence{}; o.Observer = rec })
	ctx := context.Background()
	const (
		created   = "ctap2.CredentialCreated"
		asserted  = "ctap2.CredentialAsserted"
		deleted   = "ctap2.CredentialDeleted"
		updated   = "ctap2.CredentialUpdated"
		answered  = "ctap2.PresenceAnswered"
		pinSet    = "ctap2.PINSet"
		pinChange = "ctap2.PINChanged"
	)

	wantStatus(t, k.c.SetPIN(ctx, 2, "1234"), ctap2.StatusOK)
	wantKinds(t, "setPIN", rec.take(), pinSet)

	mc := func(user byte) []byte {
		tok, err := k.c.PINToken(ctx, 2, "1234", ctap2.PermMakeCredential, "example.com")
		if err != nil {
			t.Fatal(err)
		}
		req := mcRequest(t, "example.com", []byte{user}, true)
		req.PinUvAuthParam, req.PinUvAuthProtocol = tok.Param(req.ClientDataHash), tok.Version()
		// hmac-secret-mc without hmac-secret is read and ignored (CTAP
		// 2.2 section 12.7); an unknown name stays out of the event.
		req.Extensions = ctap2.MakeCredentialExtensions{CredProtect: 1, LargeBlobKey: true,
			HMACSecretMC: &ctap2.HMACSecretInput{}, Other: map[string][]byte{"x-\x1b[31m": {0xf5}}}
		return k.register(t, req)
	}
	id1 := mc(1)
	es := rec.take()
	wantKinds(t, "makeCredential", es, answered, created)
	c := es[1].(ctap2.CredentialCreated)
	if c.RPID != "example.com" || c.RPIDHash != sha256.Sum256([]byte("example.com")) || !bytes.Equal(c.CredentialID, id1) ||
		c.UserName != "alice" || !c.Discoverable || c.U2F {
		t.Errorf("CredentialCreated %+v", c)
	}
	if want := []string{"credProtect", "hmac-secret-mc", "largeBlobKey"}; !slices.Equal(c.Extensions, want) {
		t.Errorf("CredentialCreated.Extensions %q, want %q", c.Extensions, want)
	}
	if want := []string{"credProtect", "largeBlobKey"}; !slices.Equal(c.ExtensionOutputs, want) {
		t.Errorf("CredentialCreated.ExtensionOutputs %q, want %q", c.ExtensionOutputs, want)
	}
	if a := es[0].(ctap2.PresenceAnswered); a.Request.Command != "makeCredential" || a.Err != nil {
		t.Errorf("PresenceAnswered %+v", a)
	}
	id2 := mc(2)
	rec.take()

	// Two accounts: getAssertion and getNextAssertion each assert one.
	got, err := k.c.GetAssertion(ctx, &ctap2.GetAssertionRequest{RPID: "example.com", ClientDataHash: make([]byte, 32),
		Extensions: ctap2.GetAssertionExtensions{LargeBlobKey: true, CredBlob: true}})
	if err != nil {
		t.Fatal(err)
	}
	es = rec.take()
	wantKinds(t, "getAssertion", es, answered, asserted)
	if a := es[1].(ctap2.CredentialAsserted); a.RPID != "example.com" || !bytes.Equal(a.CredentialID, got.Credential.ID) ||
		!a.UserPresent || a.UserVerified || a.SignCount == 0 {
		t.Errorf("CredentialAsserted %+v", a)
	} else if want := []string{"credBlob", "largeBlobKey"}; !slices.Equal(a.Extensions, want) || !slices.Equal(a.ExtensionOutputs, want) {
		t.Errorf("CredentialAsserted extensions %q, outputs %q, want both %q", a.Extensions, a.ExtensionOutputs, want)
	}
	if _, err := k.c.GetNextAssertion(ctx); err != nil {
		t.Fatal(err)
	}
	wantKinds(t, "getNextAssertion", rec.take(), asserted)

	// Credential management: update, delete.
	cm := k.cm(t, "")
	rec.take()
	if err := cm.UpdateUser(ctx, id2, ctap2.UserEntity{ID: []byte{2}, Name: "bob"}); err != nil {
		t.Fatal(err)
	}
	es = rec.take()
	wantKinds(t, "updateUserInformation", es, updated)
	if u := es[0].(ctap2.CredentialUpdated); u.RPID != "example.com" || !bytes.Equal(u.CredentialID, id2) {
		t.Errorf("CredentialUpdated %+v", u)
	}
	if err := cm.Delete(ctx, id1); err != nil {
		t.Fatal(err)
	}
	es = rec.take()
	wantKinds(t, "deleteCredential", es, deleted)
	if d := es[0].(ctap2.CredentialDeleted); d.RPID != "example.com" || !bytes.Equal(d.CredentialID, id1) {
		t.Errorf("CredentialDeleted %+v", d)
	}

	// A new registration for the same user replaces the old one.
	id3 := mc(2)
	es = rec.take()
	wantKinds(t, "makeCredential replacing", es, answered, deleted, created)
	if d := es[1].(ctap2.CredentialDeleted); !bytes.Equal(d.CredentialID, id2) {
		t.Errorf("replaced %x, want %x", d.CredentialID, id2)
	}
	if c := es[2].(ctap2.CredentialCreated); !bytes.Equal(c.CredentialID, id3) {
		t.Errorf("created %x, want %x", c.CredentialID, id3)
	}

	// The Go API the control API uses.
	if err := k.a.RemoveCredential(id3); err != nil {
		t.Fatal(err)
	}
	wantKinds(t, "RemoveCredential", rec.take(), deleted)

	// A failing command tells only of the touch it took: a key without
	// the credential answers after a touch, as hardware keys do.
	_, err = k.c.GetAssertion(ctx, &ctap2.GetAssertionRequest{RPID: "none.example", ClientDataHash: make([]byte, 32)})
	wantStatus(t, err, ctap2.ErrNoCredentials)
	wantKinds(t, "getAssertion without credentials", rec.take(), answered)
	// A silent one tells nothing.
	_, err = k.c.GetAssertion(ctx, &ctap2.GetAssertionRequest{RPID: "none.example", ClientDataHash: make([]byte, 32), Options: map[string]bool{"up": false}})
	wantStatus(t, err, ctap2.ErrNoCredentials)
	wantKinds(t, "silent getAssertion without credentials", rec.take())

	wantStatus(t, k.c.ChangePIN(ctx, 2, "1234", "5678"), ctap2.StatusOK)
	wantKinds(t, "changePIN", rec.take(), pinChange)

	// U2F register and authenticate.
	app := sha256.Sum256([]byte("https://u2f.example.com"))
	chal := sha256.Sum256([]byte("challenge"))
	reg := u2f(t, k, apdu(1, 0, append(chal[:], app[:]...)))
	handle := reg[67 : 67+int(reg[66])]
	es = rec.take()
	wantKinds(t, "U2F register", es, answered, created)
	if c := es[1].(ctap2.CredentialCreated); !c.U2F || c.RPID != "" || c.RPIDHash != app || !bytes.Equal(c.CredentialID, handle) || c.Discoverable {
		t.Errorf("U2F CredentialCreated %+v", c)
	}
	if a := es[0].(ctap2.PresenceAnswered); a.Request.Command != "U2F register" {
		t.Errorf("U2F PresenceAnswered %+v", a)
	}
	data := append(append(append(chal[:], app[:]...), byte(len(handle))), handle...)
	u2f(t, k, apdu(2, 3, data))
	es = rec.take()
	wantKinds(t, "U2F authenticate", es, answered, asserted)
	if a := es[1].(ctap2.CredentialAsserted); !a.U2F || a.RPIDHash != app || !bytes.Equal(a.CredentialID, handle) || !a.UserPresent || a.UserVerified {
		t.Errorf("U2F CredentialAsserted %+v", a)
	}

	// Wrong PINs until the PIN blocks (CTAP 2.1 section 6.5.5.7.2): three
	// per power cycle, eight in all.
	for i := 0; i < 8; i++ {
		if i > 0 && i%3 == 0 {
			k.a.PowerCycle()
		}
		_, _ = k.c.PINToken(ctx, 2, "0000", ctap2.PermMakeCredential, "example.com")
	}
	es = rec.take()
	wantKinds(t, "wrong PINs", es, "ctap2.PINBlocked")

	k.a.PowerCycle()
	wantStatus(t, k.c.Reset(ctx), ctap2.StatusOK)
	wantKinds(t, "reset", rec.take(), answered, "ctap2.Reset")
}

// TestObserverPresenceRequested: a Presence that waits for a person calls
// ctap2.PresenceWaiting, and the observer sees PresenceRequested before
// the answer, once; a timeout is PresenceTimedOut.
func TestObserverPresenceRequested(t *testing.T) {
	rec := &recorder{}
	answer := ctap2.ErrPresenceTimeout
	p := ctap2.PresenceFunc(func(ctx context.Context, req ctap2.PresenceRequest) error {
		ctap2.PresenceWaiting(ctx)
		ctap2.PresenceWaiting(ctx)
		if len(rec.take()) != 1 {
			t.Error("PresenceRequested not told while waiting")
		}
		rec.Observe(ctx, ctap2.PresenceRequested{Request: req})
		return answer
	})
	k := newKey(t, func(o *ctap2.Options) { o.Presence = p; o.Observer = rec })
	_, err := k.c.MakeCredential(context.Background(), mcRequest(t, "example.com", []byte{1}, false))
	wantStatus(t, err, ctap2.ErrUserActionTimeout)
	es := rec.take()
	wantKinds(t, "timed out", es, "ctap2.PresenceRequested", "ctap2.PresenceTimedOut")
	if r := es[0].(ctap2.PresenceRequested); r.Request.Command != "makeCredential" || r.Request.RPID != "example.com" || r.Request.UserName != "alice" {
		t.Errorf("PresenceRequested %+v", r)
	}
	answer = ctap2.ErrPresenceDenied
	_, err = k.c.MakeCredential(context.Background(), mcRequest(t, "example.com", []byte{1}, false))
	wantStatus(t, err, ctap2.ErrOperationDenied)
	es = rec.take()
	wantKinds(t, "denied", es, "ctap2.PresenceRequested", "ctap2.PresenceAnswered")
	if a := es[1].(ctap2.PresenceAnswered); a.Err != ctap2.ErrPresenceDenied {
		t.Errorf("PresenceAnswered %+v", a)
	}
}
