package stackbench

import (
	"context"
	"testing"

	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/ctap2/client"
	"github.com/vkey-dev/vkey/hid"
	"github.com/vkey-dev/vkey/internal/benchpair"
	"github.com/vkey-dev/vkey/keystore"
)

// BenchmarkCTAPHIDGetAssertion measures one getAssertion round trip through
// the CTAPHID engine on the in-process pipe (a Client on the host end: the
// request is cut into reports, reassembled by the engine, and the reply cut
// and reassembled again) against the same command called directly on the
// authenticator, and reports their ratio (goal: at most 1.10).
//
// The two run in alternating blocks of 64 round trips, so that drift in the
// machine's speed falls on both alike, while neither disturbs the other's
// caches at every iteration.
func BenchmarkCTAPHIDGetAssertion(b *testing.B) {
	benchCTAPHID(b, func(p hid.Port) hid.Port { return p })
}

// BenchmarkCTAPHIDGetAssertionAsync is BenchmarkCTAPHIDGetAssertion with the
// pipe's host end hidden from the Client, which then writes reports for
// the device's goroutines to read and reads the replies on a goroutine of
// its own, as with the ports of other transports. It has no goal: it shows
// what the goroutine handoffs cost on this machine.
func BenchmarkCTAPHIDGetAssertionAsync(b *testing.B) {
	benchCTAPHID(b, func(p hid.Port) hid.Port { return opaquePort{p} })
}

// opaquePort hides what kind of port it wraps.
type opaquePort struct{ hid.Port }

// benchCTAPHID is BenchmarkCTAPHIDGetAssertion with the host end of the pipe
// passed through wrap.
func benchCTAPHID(b *testing.B, wrap func(hid.Port) hid.Port) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := ctap2.New(ctap2.Options{Store: keystore.NewMemory(0), Presence: ctap2.AutoPresence{}})
	if err != nil {
		b.Fatal(err)
	}
	host, dev := hid.Pipe()
	go func() { _ = hid.NewDevice(a, hid.DeviceConfig{MaxMsgSize: a.MaxMsgSize()}).Serve(ctx, dev) }()
	hc, err := hid.NewClient(ctx, wrap(host))
	if err != nil {
		b.Fatal(err)
	}
	att, err := client.New(client.Direct{A: a}).MakeCredential(ctx, &ctap2.MakeCredentialRequest{
		ClientDataHash: make([]byte, 32), RP: &ctap2.RPEntity{ID: "example.com"},
		User: &ctap2.UserEntity{ID: []byte{1}}, PubKeyCredParams: []ctap2.CredentialParameter{{Type: "public-key", Alg: -7}},
	})
	if err != nil {
		b.Fatal(err)
	}
	id, _ := att.CredentialID()
	body, _ := ctap2.Marshal(&ctap2.GetAssertionRequest{RPID: "example.com", ClientDataHash: make([]byte, 32),
		AllowList: []ctap2.CredentialDescriptor{{Type: "public-key", ID: id}}})
	msg := append([]byte{ctap2.CmdGetAssertion}, body...)
	ctaphid := benchpair.Op{Name: "ctaphid", Run: func() error {
		out, err := hc.CBOR(ctx, msg)
		if err == nil && out[0] != 0 {
			err = ctap2.Status(out[0])
		}
		return err
	}}
	direct := benchpair.Op{Name: "direct", Run: func() error {
		if out := a.HandleCBOR(ctx, msg); out[0] != 0 {
			return ctap2.Status(out[0])
		}
		return nil
	}}
	benchpair.Compare(b, 64, ctaphid, direct)
}
