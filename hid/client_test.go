package hid

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// serve runs a device on the device end of a port pair until the test ends.
func serve(t *testing.T, h Handler, cfg DeviceConfig, dev Port) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := NewDevice(h, cfg).Serve(ctx, dev); err != nil && !errors.Is(err, context.Canceled) {
			t.Logf("Serve: %v", err)
		}
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
}

// pipeModes are the two ways a Client uses a Pipe: handing its requests to
// the engine on its own goroutine ("inline"), or writing reports that the
// device's goroutines read, as on any other port ("async": the host end is
// wrapped so that the client cannot tell it is a pipe).
var pipeModes = []struct {
	name   string
	inline bool
}{{"inline", true}, {"async", false}}

// asyncPort hides a pipe end from the Client's inline path.
type asyncPort struct{ *pipeEnd }

// forEachPipeMode runs f in a synctest bubble for each of pipeModes.
func forEachPipeMode(t *testing.T, f func(t *testing.T, inline bool)) {
	for _, m := range pipeModes {
		t.Run(m.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { f(t, m.inline) })
		})
	}
}

// pipeClient returns a client of a fresh device over a Pipe, used inline
// or not (see pipeModes). It checks that the mode is the one asked for.
func pipeClient(t *testing.T, h Handler, cfg DeviceConfig, inline bool) *Client {
	t.Helper()
	host, dev := Pipe()
	serve(t, h, cfg, dev)
	if !inline {
		host = asyncPort{host.(*pipeEnd)}
	}
	c, err := NewClient(context.Background(), host)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if _, ok := h.(*fakeHandler); ok {
		got, err := c.CBOR(context.Background(), []byte{fakeWhere})
		if err != nil || !bytes.Equal(got, []byte{0, boolByte(inline)}) {
			t.Fatalf("handler on the client's goroutine: answer %x, %v; want %v", got, err, inline)
		}
	}
	return c
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// exercise runs the client API against a device serving a fakeHandler.
func exercise(t *testing.T, c *Client) {
	t.Helper()
	ctx := context.Background()
	info := c.Info()
	if info.Channel == 0 || info.Channel == BroadcastCID || info.Protocol != ProtocolVersion {
		t.Errorf("Info() = %+v", info)
	}
	for _, n := range []int{0, 10, 1200} {
		data := pattern(n)
		got, err := c.Ping(ctx, data)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("Ping(%d bytes) = %x, %v", n, got, err)
		}
	}
	req := append([]byte{0x01}, pattern(500)...)
	got, err := c.CBOR(ctx, req)
	if err != nil || !bytes.Equal(got, append([]byte{0}, req...)) {
		t.Fatalf("CBOR = %x, %v", got, err)
	}
	got, err = c.CBOR(ctx, []byte{fakeBig})
	if err != nil || !bytes.Equal(got, append([]byte{0}, pattern(2999)...)) {
		t.Fatalf("CBOR(big) = %d bytes, %v", len(got), err)
	}
	apdu := []byte{0, 3, 0, 0, 0}
	got, err = c.MSG(ctx, apdu)
	if err != nil || !bytes.Equal(got, append(bytes.Clone(apdu), 0x90, 0)) {
		t.Fatalf("MSG = %x, %v", got, err)
	}
	if err := c.Wink(ctx); err != nil {
		t.Fatalf("Wink: %v", err)
	}
	_, err = c.Ping(ctx, pattern(1201))
	var herr Error
	if !errors.As(err, &herr) || herr != ErrInvalidLen {
		t.Fatalf("Ping(too long) error %v, want ErrInvalidLen", err)
	}
	if !strings.Contains(err.Error(), "ERR_INVALID_LEN") {
		t.Errorf("error message %q does not name the code", err)
	}
}

func TestClientPipe(t *testing.T) {
	forEachPipeMode(t, func(t *testing.T, inline bool) {
		exercise(t, pipeClient(t, newFake(), DeviceConfig{}, inline))
	})
}

func TestClientErrorsAndLock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		host, dev := Pipe()
		serve(t, newFake(), DeviceConfig{Capabilities: CapabilityCBOR | CapabilityNMSG}, dev)
		ctx := context.Background()
		a, err := NewClient(ctx, host)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		if a.Info().Capabilities != CapabilityCBOR|CapabilityNMSG {
			t.Errorf("capabilities %02x", a.Info().Capabilities)
		}
		if _, err := a.MSG(ctx, []byte{0, 3, 0, 0, 0}); !errors.Is(err, ErrInvalidCmd) {
			t.Errorf("MSG without U2F: %v", err)
		}
		if err := a.Lock(ctx, 11); !errors.Is(err, ErrInvalidPar) {
			t.Errorf("Lock(11): %v", err)
		}
		if err := a.Lock(ctx, 3); err != nil {
			t.Fatalf("Lock(3): %v", err)
		}
		if err := a.Lock(ctx, 0); err != nil {
			t.Fatalf("Lock(0): %v", err)
		}
	})
}

func TestClientContextCancel(t *testing.T) {
	forEachPipeMode(t, func(t *testing.T, inline bool) {
		h := newFake()
		c := pipeClient(t, h, DeviceConfig{}, inline)
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			hctx := <-h.started
			cancel() // the host gives up: the client sends CTAPHID_CANCEL
			<-hctx.Done()
		}()
		_, err := c.CBOR(ctx, []byte{fakeBlockUP})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("CBOR error %v, want context.Canceled", err)
		}
		synctest.Wait()
		// The cancelled answer was consumed: the next request gets its own.
		got, err := c.CBOR(context.Background(), []byte{4})
		if err != nil || !bytes.Equal(got, []byte{0, 4}) {
			t.Fatalf("CBOR after cancel = %x, %v", got, err)
		}
	})
}

func TestClientCancelMethod(t *testing.T) {
	forEachPipeMode(t, func(t *testing.T, inline bool) {
		h := newFake()
		c := pipeClient(t, h, DeviceConfig{}, inline)
		go func() {
			<-h.started
			if err := c.Cancel(); err != nil {
				t.Errorf("Cancel: %v", err)
			}
		}()
		got, err := c.CBOR(context.Background(), []byte{fakeBlock})
		if err != nil || !bytes.Equal(got, []byte{keepaliveCancel}) {
			t.Fatalf("CBOR = %x, %v; want CTAP2_ERR_KEEPALIVE_CANCEL", got, err)
		}
	})
}

func TestClientDeviceGone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		host, dev := Pipe()
		_ = dev.Close()
		if _, err := NewClient(context.Background(), host); err == nil {
			t.Fatal("NewClient succeeded without a device")
		}
	})
}

func TestClientTwoHosts(t *testing.T) {
	// Two clients on one port pair (as two processes sharing a pty would
	// be) get different channels.
	synctest.Test(t, func(t *testing.T) {
		h := newFake()
		d := NewDevice(h, DeviceConfig{})
		var cids []uint32
		for range 2 {
			host, dev := Pipe()
			serveDevice(t, d, dev)
			c, err := NewClient(context.Background(), host)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			cids = append(cids, c.Info().Channel)
		}
		if cids[0] == cids[1] {
			t.Errorf("same channel %08x twice", cids[0])
		}
	})
}

// serveDevice serves an existing device on dev until the test ends.
func serveDevice(t *testing.T, d *Device, dev Port) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = d.Serve(ctx, dev) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
}

// BenchmarkPipeRoundTrip measures one CTAPHID_CBOR round trip (a
// getInfo-sized request and a 300-byte answer) through the engine and the
// pipe, against a handler that does no work: with the client's requests
// served on its goroutine ("inline", what a Client on a Pipe does) and
// with the device's goroutines reading reports, as on the other ports
// ("async").
func BenchmarkPipeRoundTrip(b *testing.B) {
	for _, m := range pipeModes {
		b.Run(m.name, func(b *testing.B) {
			host, dev := Pipe()
			if !m.inline {
				host = asyncPort{host.(*pipeEnd)}
			}
			ctx, cancel := context.WithCancel(context.Background())
			served := make(chan error, 1)
			go func() { served <- NewDevice(benchHandler{}, DeviceConfig{}).Serve(ctx, dev) }()
			c, err := NewClient(ctx, host)
			if err != nil {
				b.Fatal(err)
			}
			req := []byte{0x04}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.CBOR(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			_ = c.Close()
			cancel()
			<-served
		})
	}
}

// benchHandler answers every request with a fixed 300-byte response.
type benchHandler struct{}

var benchResp = append([]byte{0}, pattern(299)...)

func (benchHandler) HandleCBOR(context.Context, []byte) []byte { return benchResp }
func (benchHandler) HandleMSG(context.Context, []byte) []byte  { return []byte{0x90, 0} }

// TestClientBackToBack sends many requests in a row with real scheduling:
// a request that follows a reply at once must never meet ERR_CHANNEL_BUSY
// from the transaction that just ended.
func TestClientBackToBack(t *testing.T) {
	for _, h := range []Handler{benchHandler{}, slowHandler{}} {
		forEachPipeMode(t, func(t *testing.T, inline bool) {
			c := pipeClient(t, h, DeviceConfig{}, inline)
			for i := range 1000 {
				if _, err := c.CBOR(t.Context(), []byte{4}); err != nil {
					t.Fatalf("%T: request %d: %v", h, i, err)
				}
			}
		})
	}
}

// slowHandler answers after another goroutine has taken over reading the
// port (fake time; see session.readLoop).
type slowHandler struct{ benchHandler }

func (h slowHandler) HandleCBOR(ctx context.Context, msg []byte) []byte {
	time.Sleep(2 * busyDelay)
	return h.benchHandler.HandleCBOR(ctx, msg)
}

// TestClientRetriesWhileBusy: a request that meets ERR_CHANNEL_BUSY because
// another host's request is running (a browser waiting for a touch) is
// sent again until the device is free (CTAP 2.1 section 11.2.9.1.6: the
// client SHOULD retry); the retries end with ctx, and after busyFor.
func TestClientRetriesWhileBusy(t *testing.T) {
	forEachPipeMode(t, func(t *testing.T, inline bool) {
		h := newFake()
		d := NewDevice(h, DeviceConfig{})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var clients [2]*Client
		var wg sync.WaitGroup
		for i := range clients {
			host, dev := Pipe()
			wg.Go(func() { _ = d.Serve(ctx, dev) })
			if !inline {
				host = asyncPort{host.(*pipeEnd)}
			}
			c, err := NewClient(context.Background(), host)
			if err != nil {
				t.Fatal(err)
			}
			clients[i] = c
		}
		defer func() {
			cancel()
			for _, c := range clients {
				_ = c.Close()
			}
			wg.Wait()
		}()
		a, b := clients[0], clients[1]

		// a's request holds the device for 3 s; b's gets through after.
		var aErr error
		wg.Go(func() { _, aErr = a.CBOR(context.Background(), []byte{fakeIgnore}) })
		<-h.started
		wg.Go(func() {
			time.Sleep(3 * time.Second)
			close(h.release)
		})
		start := time.Now()
		got, err := b.CBOR(t.Context(), []byte{4})
		if err != nil || !bytes.Equal(got, []byte{0, 4}) {
			t.Fatalf("b while a ran: %x, %v; want the echo once a is done", got, err)
		}
		if waited := time.Since(start); waited < 3*time.Second || waited > 3*time.Second+busyMax {
			t.Errorf("b waited %v, want 3 s plus at most one pause", waited)
		}
		synctest.Wait()
		if aErr != nil {
			t.Errorf("a: %v", aErr)
		}

		// ctx ends the retries, with its error.
		h.release = make(chan struct{})
		wg.Go(func() { _, aErr = a.CBOR(context.Background(), []byte{fakeIgnore}) })
		<-h.started
		short, stop := context.WithTimeout(t.Context(), time.Second)
		_, err = b.CBOR(short, []byte{4})
		stop()
		if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrChannelBusy) {
			t.Errorf("b with a 1 s context: %v, want the deadline and ERR_CHANNEL_BUSY", err)
		}
		// And after busyFor, ERR_CHANNEL_BUSY itself.
		start = time.Now()
		_, err = b.CBOR(t.Context(), []byte{4})
		if !errors.Is(err, ErrChannelBusy) || time.Since(start) > busyFor {
			t.Errorf("b after %v: %v, want ERR_CHANNEL_BUSY within %v", time.Since(start), err, busyFor)
		}
		close(h.release)
	})
}
