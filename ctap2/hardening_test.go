package ctap2_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"sync"
	"testing"
	"time"

	"github.com/vkey-dev/vkey/ctap2"
)

// gatePresence answers one request at a time, as the daemon's broker does
// (a second one meanwhile is denied); each waits for Approve or its ctx.
type gatePresence struct {
	mu      sync.Mutex
	pending *gateRequest
	started chan ctap2.PresenceRequest
}

type gateRequest struct {
	req    ctap2.PresenceRequest
	answer chan error
}

func newGate() *gatePresence {
	return &gatePresence{started: make(chan ctap2.PresenceRequest, 16)}
}

func (g *gatePresence) Request(ctx context.Context, req ctap2.PresenceRequest) error {
	g.mu.Lock()
	if g.pending != nil {
		g.mu.Unlock()
		return ctap2.ErrPresenceDenied
	}
	p := &gateRequest{req: req, answer: make(chan error, 1)}
	g.pending = p
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.pending = nil
		g.mu.Unlock()
	}()
	g.started <- req
	select {
	case err := <-p.answer:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// approve answers the pending request; it reports whether there was one.
func (g *gatePresence) approve() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.pending == nil {
		return false
	}
	g.pending.answer <- nil
	return true
}

func (g *gatePresence) isPending() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.pending != nil
}

func (g *gatePresence) waitStarted(t *testing.T) ctap2.PresenceRequest {
	t.Helper()
	select {
	case r := <-g.started:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no presence request started")
	}
	return ctap2.PresenceRequest{}
}

// within fails the test unless f returns within d.
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s waited behind the pending touch", what)
	}
}

// TestPresenceWaitHoldsNoLock: while a request waits for a touch,
// management proceeds, another command is told busy at once, and a power
// cycle cancels the waiting request (issue 11, point 10).
func TestPresenceWaitHoldsNoLock(t *testing.T) {
	g := newGate()
	k := newKey(t, func(o *ctap2.Options) { o.Presence = g })
	done := make(chan error, 1)
	go func() {
		_, err := k.c.MakeCredential(context.Background(), mcRequest(t, "example.com", []byte{1}, true))
		done <- err
	}()
	g.waitStarted(t)
	within(t, time.Second, "listing credentials", func() {
		if _, err := k.a.VirtualCredentials(); err != nil {
			t.Errorf("VirtualCredentials: %v", err)
		}
	})
	within(t, time.Second, "another command", func() {
		if st, _ := k.raw(ctap2.CmdGetInfo, nil); st != ctap2.ErrChannelBusy {
			t.Errorf("getInfo during a touch: %v, want CTAP1_ERR_CHANNEL_BUSY", st)
		}
	})
	within(t, time.Second, "power cycle", k.a.PowerCycle)
	select {
	case err := <-done:
		wantStatus(t, err, ctap2.ErrKeepaliveCancel)
	case <-time.After(time.Second):
		t.Fatal("the power cycle did not cancel the waiting request")
	}
	// The key serves again.
	if _, err := k.c.GetInfo(context.Background()); err != nil {
		t.Errorf("getInfo after: %v", err)
	}
}

// TestPresenceStateChangedMeanwhile: a credential removed through the
// control API while getAssertion waits for its touch is not signed with.
func TestPresenceStateChangedMeanwhile(t *testing.T) {
	k := newKey(t)
	att, err := k.c.MakeCredential(context.Background(), mcRequest(t, "example.com", []byte{1}, true))
	if err != nil {
		t.Fatal(err)
	}
	id, _ := att.CredentialID()
	// The same state, with a touch nobody gives yet.
	g2 := newGate()
	k3 := newKey(t, func(o *ctap2.Options) { o.Presence = g2; o.Store = k.store })
	done := make(chan error, 1)
	go func() {
		_, err := k3.c.GetAssertion(context.Background(), &ctap2.GetAssertionRequest{RPID: "example.com", ClientDataHash: make([]byte, 32)})
		done <- err
	}()
	g2.waitStarted(t)
	within(t, time.Second, "removing the credential", func() {
		if err := k3.a.RemoveCredential(id); err != nil {
			t.Errorf("RemoveCredential: %v", err)
		}
	})
	g2.approve()
	select {
	case err := <-done:
		wantStatus(t, err, ctap2.ErrKeepaliveCancel)
	case <-time.After(5 * time.Second):
		t.Fatal("getAssertion never ended")
	}
}

// u2fRegisterAPDU is a U2F_REGISTER for app with challenge chal.
func u2fRegisterAPDU(app, chal string) []byte {
	a, c := sha256.Sum256([]byte(app)), sha256.Sum256([]byte(chal))
	return apdu(ctap2.U2FRegister, 0, append(c[:], a[:]...))
}

// TestU2FTouchBound: a U2F question belongs to its request and channel:
// a CTAP2 request of another channel meanwhile is busy, not denied;
// another U2F request does not take its touch; CTAPHID_CANCEL of its
// channel withdraws it (issue 11, point 4).
func TestU2FTouchBound(t *testing.T) {
	g := newGate()
	k := newKey(t, func(o *ctap2.Options) { o.Presence = g })
	ch1 := ctap2.WithChannel(context.Background(), 1)
	ch2 := ctap2.WithChannel(context.Background(), 2)
	reg := u2fRegisterAPDU("https://u2f.example.com", "one")
	if out := k.a.HandleMSG(ch1, reg); !bytes.Equal(out, []byte{0x69, 0x85}) {
		t.Fatalf("first U2F_REGISTER: %x, want 6985", out)
	}
	if r := g.waitStarted(t); r.Command != "U2F register" {
		t.Errorf("presence request %+v", r)
	}
	// A CTAP2 request from another channel: busy.
	_, err := k.c.MakeCredential(ch2, mcRequest(t, "example.com", []byte{1}, false))
	wantStatus(t, err, ctap2.ErrChannelBusy)
	if !g.isPending() {
		t.Fatal("the CTAP2 request withdrew the U2F question")
	}
	// The touch is given; another request (other challenge) and the same
	// request on another channel do not consume it.
	if !g.approve() {
		t.Fatal("nothing to approve")
	}
	time.Sleep(50 * time.Millisecond)
	other := u2fRegisterAPDU("https://u2f.example.com", "two")
	if out := k.a.HandleMSG(ch2, other); !bytes.Equal(out, []byte{0x69, 0x85}) {
		t.Errorf("another request took the touch: %x", out)
	}
	if out := k.a.HandleMSG(ch2, reg); !bytes.Equal(out, []byte{0x69, 0x85}) {
		t.Errorf("another channel took the touch: %x", out)
	}
	if out := k.a.HandleMSG(ch1, reg); !bytes.HasSuffix(out, []byte{0x90, 0x00}) {
		t.Errorf("the request the touch was for: %x", out)
	}
	// CANCEL withdraws a question.
	k.a.CancelChannel(2) // the question "two" asked above
	for g.isPending() {
		time.Sleep(5 * time.Millisecond)
	}
	for len(g.started) > 0 {
		<-g.started
	}
	third := u2fRegisterAPDU("https://u2f.example.com", "three")
	if out := k.a.HandleMSG(ch1, third); !bytes.Equal(out, []byte{0x69, 0x85}) {
		t.Fatalf("third U2F_REGISTER: %x", out)
	}
	g.waitStarted(t)
	k.a.CancelChannel(1)
	deadline := time.Now().Add(2 * time.Second)
	for g.isPending() {
		if time.Now().After(deadline) {
			t.Fatal("CTAPHID_CANCEL left the U2F question pending")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestU2FRefusesCTAP2Credentials: U2F_AUTHENTICATE refuses (6A80, every
// P1) a discoverable credential, stored or deleted, and one protected
// above credProtect level 1; with alwaysUv U2F is off and not advertised
// (issue 11, point 3; CTAP 2.1 sections 7.2 and 12.1).
func TestU2FRefusesCTAP2Credentials(t *testing.T) {
	k := newKey(t, func(o *ctap2.Options) { o.Presence = ctap2.AutoPresence{} })
	ctx := context.Background()
	const rp = "example.com"
	app := sha256.Sum256([]byte(rp))
	chal := sha256.Sum256([]byte("c"))
	credID := func(rk bool, protect int) []byte {
		req := mcRequest(t, rp, []byte{byte(protect), 7}, rk)
		if protect != 0 {
			req.Extensions = ctap2.MakeCredentialExtensions{CredProtect: uint8(protect)}
		}
		return k.register(t, req)
	}
	authenticate := func(p1 byte, id []byte) []byte {
		data := append(append(append([]byte(nil), chal[:]...), app[:]...), byte(len(id)))
		return u2f(t, k, apdu(ctap2.U2FAuthenticate, p1, append(data, id...)))
	}
	plain := credID(false, 0)
	if out := authenticate(0x03, plain); !bytes.HasSuffix(out, []byte{0x90, 0x00}) {
		t.Fatalf("a plain non-discoverable credential: %x", out)
	}
	discoverable := credID(true, 0)
	protected := credID(false, 3)
	optionalWithList := credID(false, 2)
	deleted := credID(true, 1)
	if err := k.a.RemoveCredential(deleted); err != nil {
		t.Fatal(err)
	}
	// A syncable non-discoverable credential is stored; deleted, it must
	// be gone for U2F too, not sign again with a counter restarted.
	syncable := newKey(t, func(o *ctap2.Options) { o.Presence = ctap2.AutoPresence{}; o.Passkeys = ctap2.Syncable })
	att, err := syncable.c.MakeCredential(ctx, mcRequest(t, rp, []byte{9}, false))
	if err != nil {
		t.Fatal(err)
	}
	deletedSyncable, err := att.CredentialID()
	if err != nil {
		t.Fatal(err)
	}
	syncableData := append(append(append([]byte(nil), chal[:]...), app[:]...), byte(len(deletedSyncable)))
	syncableData = append(syncableData, deletedSyncable...)
	if out := u2f(t, syncable, apdu(ctap2.U2FAuthenticate, 0x03, syncableData)); !bytes.HasSuffix(out, []byte{0x90, 0x00}) {
		t.Fatalf("a syncable non-discoverable credential before deletion: %x", out)
	}
	if err := syncable.a.RemoveCredential(deletedSyncable); err != nil {
		t.Fatal(err)
	}
	for _, p1 := range []byte{0x03, 0x07, 0x08} {
		if out := u2f(t, syncable, apdu(ctap2.U2FAuthenticate, p1, syncableData)); !bytes.Equal(out, []byte{0x6A, 0x80}) {
			t.Errorf("deleted syncable, P1 %02x: %x, want 6A80", p1, out)
		}
	}

	for name, id := range map[string][]byte{"discoverable": discoverable, "credProtect 3": protected,
		"credProtect 2": optionalWithList, "deleted discoverable": deleted} {
		for _, p1 := range []byte{0x03, 0x07, 0x08} {
			if out := authenticate(p1, id); !bytes.Equal(out, []byte{0x6A, 0x80}) {
				t.Errorf("%s, P1 %02x: %x, want 6A80", name, p1, out)
			}
		}
	}

	// alwaysUv: U2F is off.
	cfg, err := k.store.Config()
	if err != nil {
		t.Fatal(err)
	}
	cfg.AlwaysUV = true
	if err := k.store.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	info, err := k.c.GetInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range info.Versions {
		if v == "U2F_V2" {
			t.Errorf("getInfo lists U2F_V2 with alwaysUv on: %v", info.Versions)
		}
	}
	for name, cmd := range map[string][]byte{
		"version":      {0, ctap2.U2FVersion, 0, 0},
		"register":     u2fRegisterAPDU(rp, "x"),
		"authenticate": apdu(ctap2.U2FAuthenticate, 0x03, append(append(append(chal[:], app[:]...), byte(len(plain))), plain...)),
	} {
		if out := k.a.HandleMSG(ctx, cmd); !bytes.Equal(out, []byte{0x69, 0x86}) {
			t.Errorf("%s with alwaysUv: %x, want 6986", name, out)
		}
	}
}

// TestConcurrentCommandsDuringTouch: a command that arrives while another
// is running (not yet waiting) is served after it, and one arriving while
// the other waits for a touch is told busy, never left waiting for the
// touch.
func TestConcurrentCommandsDuringTouch(t *testing.T) {
	g := newGate()
	k := newKey(t, func(o *ctap2.Options) { o.Presence = g })
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if st, _ := k.raw(ctap2.CmdGetInfo, nil); st != ctap2.StatusOK {
				t.Errorf("concurrent getInfo: %v", st)
			}
		})
	}
	wg.Wait()
	done := make(chan error, 1)
	go func() {
		done <- k.c.Selection(context.Background())
	}()
	g.waitStarted(t)
	within(t, time.Second, "a concurrent command", func() {
		for range 8 {
			wg.Go(func() {
				if st, _ := k.raw(ctap2.CmdGetInfo, nil); st != ctap2.ErrChannelBusy {
					t.Errorf("getInfo during a touch: %v", st)
				}
			})
		}
		wg.Wait()
	})
	g.approve()
	if err := <-done; err != nil {
		t.Errorf("selection: %v", err)
	}
}
