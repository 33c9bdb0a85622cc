package stackbench

import (
	"context"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/ctap2/client"
	"github.com/vkey-dev/vkey/hid"
	"github.com/vkey-dev/vkey/keystore"
)

// BenchmarkCTAPHIDGetAssertion measures one getAssertion round trip through
// the CTAPHID engine on the in-process pipe against the same command called
// directly on the authenticator, interleaved in one run, and reports their
// ratio (goal: at most 1.10). It also reports the ratio against the direct
// call made on another goroutine ("ratio-vs-handoff"): a client and a device
// are always two goroutines, and on some machines (virtual ones above all)
// waking a parked thread costs as much as the framing itself.
func BenchmarkCTAPHIDGetAssertion(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := ctap2.New(ctap2.Options{Store: keystore.NewMemory(0), Presence: ctap2.AutoPresence{}})
	if err != nil {
		b.Fatal(err)
	}
	host, dev := hid.Pipe()
	go func() { _ = hid.NewDevice(a, hid.DeviceConfig{MaxMsgSize: a.MaxMsgSize()}).Serve(ctx, dev) }()
	hc, err := hid.NewClient(ctx, host)
	if err != nil {
		b.Fatal(err)
	}
	param, _ := ctap2.Marshal(ctap2.CredentialParameter{Type: "public-key", Alg: -7})
	att, err := client.New(client.Direct{A: a}).MakeCredential(ctx, &ctap2.MakeCredentialRequest{
		ClientDataHash: make([]byte, 32), RP: &ctap2.RPEntity{ID: "example.com"},
		User: &ctap2.UserEntity{ID: []byte{1}}, PubKeyCredParams: []cbor.RawMessage{param},
	})
	if err != nil {
		b.Fatal(err)
	}
	id, _ := att.CredentialID()
	body, _ := ctap2.Marshal(&ctap2.GetAssertionRequest{RPID: "example.com", ClientDataHash: make([]byte, 32),
		AllowList: []ctap2.CredentialDescriptor{{Type: "public-key", ID: id}}})
	msg := append([]byte{ctap2.CmdGetAssertion}, body...)
	var framed, direct, handoff time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		out, err := hc.CBOR(ctx, msg)
		if err != nil || out[0] != 0 {
			b.Fatalf("through CTAPHID: %v %x", err, out[:1])
		}
		t1 := time.Now()
		if out := a.HandleCBOR(ctx, msg); out[0] != 0 {
			b.Fatalf("direct: %x", out[:1])
		}
		t2 := time.Now()
		done := make(chan []byte)
		go func() { done <- a.HandleCBOR(ctx, msg) }()
		if out := <-done; out[0] != 0 {
			b.Fatalf("direct on a goroutine: %x", out[:1])
		}
		t3 := time.Now()
		framed += t1.Sub(t0)
		direct += t2.Sub(t1)
		handoff += t3.Sub(t2)
	}
	b.StopTimer()
	b.ReportMetric(float64(framed.Nanoseconds())/float64(b.N), "ctaphid-ns/op")
	b.ReportMetric(float64(direct.Nanoseconds())/float64(b.N), "direct-ns/op")
	b.ReportMetric(float64(handoff.Nanoseconds())/float64(b.N), "handoff-ns/op")
	b.ReportMetric(float64(framed)/float64(direct), "ratio")
	b.ReportMetric(float64(framed)/float64(handoff), "ratio-vs-handoff")
}
