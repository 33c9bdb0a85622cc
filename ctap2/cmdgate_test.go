package ctap2_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/keystore"
)

// storeGate holds the first call that passes it after arm until release.
type storeGate struct {
	mu      sync.Mutex
	armed   bool
	entered chan struct{}
	release chan struct{}
}

func (g *storeGate) arm() {
	g.mu.Lock()
	g.armed, g.entered, g.release = true, make(chan struct{}), make(chan struct{})
	g.mu.Unlock()
}

// pass returns at once, unless the gate is armed: then it disarms it,
// closes entered and waits for release.
func (g *storeGate) pass() {
	g.mu.Lock()
	armed := g.armed
	g.armed = false
	g.mu.Unlock()
	if armed {
		close(g.entered)
		<-g.release
	}
}

// stallingStore holds the first Config call made after arm until release:
// a command that reads the configuration (getInfo) then keeps running.
type stallingStore struct {
	keystore.Store
	storeGate
}

func (s *stallingStore) Config() (keystore.Config, error) {
	s.pass()
	return s.Store.Config()
}

// TestCommandWaitHonoursContext: a command arriving while another runs
// (not waiting for a touch) waits for it without polling, gives up with
// CTAP2_ERR_KEEPALIVE_CANCEL as soon as its context ends (CTAP 2.1 section
// 11.2.9.1.5), and otherwise runs as soon as the other ends.
func TestCommandWaitHonoursContext(t *testing.T) {
	st := &stallingStore{Store: keystore.NewMemory(0)}
	k := newKey(t, func(o *ctap2.Options) { o.Store = st })
	st.arm()
	first := make(chan ctap2.Status, 1)
	go func() { s, _ := k.raw(ctap2.CmdGetInfo, nil); first <- s }()
	<-st.entered

	// Cancelled while it waits: it ends at once, not when the first does.
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan []byte, 1)
	go func() { out <- k.a.HandleCBOR(ctx, []byte{ctap2.CmdGetInfo}) }()
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	cancel()
	select {
	case r := <-out:
		if st := ctap2.Status(r[0]); st != ctap2.ErrKeepaliveCancel {
			t.Errorf("cancelled waiting getInfo: %v, want CTAP2_ERR_KEEPALIVE_CANCEL", st)
		}
		t.Logf("cancelled waiter returned %v after its cancel", time.Since(start))
	case <-time.After(time.Second):
		t.Fatal("a waiting command ignored its context's cancellation")
	}
	// A U2F request likewise.
	uctx, ucancel := context.WithCancel(context.Background())
	uout := make(chan []byte, 1)
	go func() { uout <- k.a.HandleMSG(uctx, apdu(ctap2.U2FVersion, 0, nil)) }()
	time.Sleep(10 * time.Millisecond)
	ucancel()
	select {
	case r := <-uout:
		if len(r) != 2 || r[0] != 0x69 || r[1] != 0x85 {
			t.Errorf("cancelled waiting U2F_VERSION: %x, want 6985", r)
		}
	case <-time.After(time.Second):
		t.Fatal("a waiting U2F request ignored its context's cancellation")
	}

	// Not cancelled: it runs once the first ends, woken at once.
	second := make(chan ctap2.Status, 1)
	go func() { s, _ := k.raw(ctap2.CmdGetInfo, nil); second <- s }()
	time.Sleep(10 * time.Millisecond)
	close(st.release)
	for i, ch := range []chan ctap2.Status{first, second} {
		select {
		case s := <-ch:
			if s != ctap2.StatusOK {
				t.Errorf("getInfo %d: %v", i+1, s)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("getInfo %d never ended", i+1)
		}
	}
}

// TestCommandWaitTurnsBusy: commands waiting behind a running command are
// told CTAP1_ERR_CHANNEL_BUSY as soon as it starts waiting for a touch
// (CTAP 2.1 section 11.2.4), and the key serves again after the touch.
func TestCommandWaitTurnsBusy(t *testing.T) {
	st := &stallingStore{Store: keystore.NewMemory(0)}
	g := newGate()
	k := newKey(t, func(o *ctap2.Options) { o.Store = st; o.Presence = g })
	st.arm()
	done := make(chan error, 1)
	go func() {
		_, err := k.c.MakeCredential(context.Background(), mcRequest(t, "example.com", []byte{1}, false))
		done <- err
	}()
	<-st.entered // makeCredential has the gate, not yet waiting for the touch
	var wg sync.WaitGroup
	statuses := make(chan ctap2.Status, 4)
	for range 4 {
		wg.Go(func() { s, _ := k.raw(ctap2.CmdGetInfo, nil); statuses <- s })
	}
	time.Sleep(20 * time.Millisecond)
	close(st.release)
	g.waitStarted(t)
	within(t, time.Second, "commands queued before the touch", wg.Wait)
	close(statuses)
	for s := range statuses {
		if s != ctap2.ErrChannelBusy {
			t.Errorf("getInfo queued behind a touch: %v, want CTAP1_ERR_CHANNEL_BUSY", s)
		}
	}
	g.approve()
	if err := <-done; err != nil {
		t.Errorf("makeCredential: %v", err)
	}
	if s, _ := k.raw(ctap2.CmdGetInfo, nil); s != ctap2.StatusOK {
		t.Errorf("getInfo after the touch: %v", s)
	}
}
