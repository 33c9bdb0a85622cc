package control_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/vkey-dev/vkey"
	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/ctap2/client"
	"github.com/vkey-dev/vkey/hid"
	"github.com/vkey-dev/vkey/internal/control"
	"github.com/vkey-dev/vkey/presence"
)

// u2fAPDU encodes a U2F request in extended length form, as libfido2 and
// python-fido2 send it.
func u2fAPDU(ins, p1 byte, data []byte) []byte {
	apdu := []byte{0, ins, p1, 0, 0, 0, 0}
	binary.BigEndian.PutUint16(apdu[5:], uint16(len(data)))
	return append(append(apdu, data...), 0, 0)
}

// u2fUntilOK repeats a U2F request while the key answers
// SW_CONDITIONS_NOT_SATISFIED (U2F's way of waiting for a touch) and
// returns the answer without its status word.
func u2fUntilOK(t *testing.T, h hid.Handler, apdu []byte) []byte {
	t.Helper()
	for range 200 {
		resp := h.HandleMSG(ctx(t), apdu)
		n := len(resp) - 2
		switch {
		case n >= 0 && resp[n] == 0x90 && resp[n+1] == 0:
			return resp[:n]
		case n == 0 && resp[0] == 0x69 && resp[1] == 0x85:
			time.Sleep(10 * time.Millisecond)
		default:
			t.Fatalf("U2F answer %x", resp)
		}
	}
	t.Fatal("no touch for the U2F request")
	return nil
}

// nextCredentialEvent returns the next event, which must be of type typ
// once presence events are skipped.
func nextCredentialEvent(t *testing.T, next func() control.Event, typ string) control.Event {
	t.Helper()
	for range 10 {
		e := next()
		switch e.Type {
		case typ:
			return e
		case control.EventPresenceRequested, control.EventPresenceAnswered:
		default:
			t.Fatalf("event %+v, want %s", e, typ)
		}
	}
	t.Fatalf("no %s event", typ)
	return control.Event{}
}

func TestU2FEvents(t *testing.T) {
	f := newFixture(t, presence.Auto)
	next := f.events(t)
	h := vkey.Handler(f.a)
	app := sha256.Sum256([]byte("https://u2f.example.com"))
	challenge := bytes.Repeat([]byte{7}, 32)

	reg := u2fUntilOK(t, h, u2fAPDU(ctap2.U2FRegister, 0, append(append([]byte(nil), challenge...), app[:]...)))
	handle := reg[67 : 67+int(reg[66])]
	added := nextCredentialEvent(t, next, control.EventCredentialAdded)
	if added.CredentialID != b64(handle) || added.RPIDHash != b64(app[:]) || added.RPID != "" ||
		added.Discoverable == nil || *added.Discoverable || added.Source != "ctap" {
		t.Errorf("credentialAdded %+v", added)
	}

	req := append(append(append([]byte(nil), challenge...), app[:]...), byte(len(handle)))
	req = append(req, handle...)
	auth := u2fUntilOK(t, h, u2fAPDU(ctap2.U2FAuthenticate, 0x03, req))
	asserted := nextCredentialEvent(t, next, control.EventCredentialAsserted)
	count := binary.BigEndian.Uint32(auth[1:5])
	if asserted.CredentialID != b64(handle) || asserted.RPIDHash != b64(app[:]) || asserted.SignCount == nil ||
		*asserted.SignCount != count || count == 0 || asserted.UserPresent == nil || !*asserted.UserPresent ||
		asserted.UserVerified == nil || *asserted.UserVerified {
		t.Errorf("credentialAsserted %+v (counter %d)", asserted, count)
	}

	// A failed request reports nothing: a key handle of another
	// application is refused with SW_WRONG_DATA.
	other := sha256.Sum256([]byte("https://other.example"))
	bad := append(append(append([]byte(nil), challenge...), other[:]...), byte(len(handle)))
	bad = append(bad, handle...)
	if resp := h.HandleMSG(ctx(t), u2fAPDU(ctap2.U2FAuthenticate, 0x03, bad)); !bytes.Equal(resp, []byte{0x6a, 0x80}) {
		t.Fatalf("foreign key handle: %x", resp)
	}
	// U2F_VERSION succeeds and is no credential event either; the next
	// event is the registration below.
	if resp := h.HandleMSG(ctx(t), u2fAPDU(ctap2.U2FVersion, 0, nil)); !bytes.HasPrefix(resp, []byte("U2F_V2")) {
		t.Fatalf("version: %x", resp)
	}
	u2fUntilOK(t, h, u2fAPDU(ctap2.U2FRegister, 0, append(append([]byte(nil), challenge...), other[:]...)))
	if e := nextCredentialEvent(t, next, control.EventCredentialAdded); e.RPIDHash != b64(other[:]) {
		t.Errorf("second registration %+v", e)
	}
}

// TestU2FCancelThroughWrapper: through the event wrapper and the CTAPHID
// engine, a U2F question belongs to its channel: CTAPHID_CANCEL on that
// channel withdraws it, a CTAP2 request of another channel meanwhile is
// busy rather than denied (issue 11, point 4).
func TestU2FCancelThroughWrapper(t *testing.T) {
	f := newFixture(t, presence.Touch)
	host, dev := hid.Pipe()
	serveDev := hid.NewDevice(vkey.Handler(f.a), hid.DeviceConfig{})
	c, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = serveDev.Serve(c, dev) }()
	defer func() { cancel(); <-done }()
	u2fClient, err := hid.NewClient(ctx(t), host)
	if err != nil {
		t.Fatal(err)
	}
	app := sha256.Sum256([]byte("https://u2f.example.com"))
	chal := sha256.Sum256([]byte("challenge"))
	resp, err := u2fClient.MSG(ctx(t), u2fAPDU(ctap2.U2FRegister, 0, append(chal[:], app[:]...)))
	if err != nil || !bytes.Equal(resp, []byte{0x69, 0x85}) {
		t.Fatalf("U2F_REGISTER: %x, %v", resp, err)
	}
	waitFor(t, "the U2F question", func() bool { _, ok := f.broker.Pending(); return ok })
	if req, _ := f.broker.Pending(); req.Command != "U2F register" {
		t.Errorf("pending %+v", req)
	}
	// A CTAP2 request from another channel: busy, and the question stays.
	other, err := hid.NewClient(ctx(t), host)
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.New(other).MakeCredential(ctx(t), &ctap2.MakeCredentialRequest{ClientDataHash: make([]byte, 32),
		RP: &ctap2.RPEntity{ID: "example.com"}, User: &ctap2.UserEntity{ID: []byte("u")},
		PubKeyCredParams: []ctap2.CredentialParameter{{Type: "public-key", Alg: -7}}})
	if !errors.Is(err, ctap2.ErrChannelBusy) {
		t.Errorf("makeCredential during a U2F question: %v, want CTAP1_ERR_CHANNEL_BUSY", err)
	}
	if _, ok := f.broker.Pending(); !ok {
		t.Fatal("the CTAP2 request withdrew the U2F question")
	}
	if err := u2fClient.Cancel(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "CTAPHID_CANCEL to withdraw the U2F question", func() bool { _, ok := f.broker.Pending(); return !ok })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited in vain for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
