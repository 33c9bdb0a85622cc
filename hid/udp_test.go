package hid

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"
)

// serveUDP serves h on a fresh loopback UDP listener until the test ends.
func serveUDP(t *testing.T, h Handler) *UDPListener {
	t.Helper()
	l, err := ListenUDP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := NewDevice(h, DeviceConfig{}).ServeListener(ctx, l); err != nil && !errors.Is(err, context.Canceled) {
			t.Logf("ServeListener: %v", err)
		}
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return l
}

func TestUDPRoundTrip(t *testing.T) {
	l := serveUDP(t, newFake())
	c, err := Dial(t.Context(), "udp:"+l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	exercise(t, c)
	// A second host gets its own channel and the replies.
	c2, err := Dial(t.Context(), "udp:"+l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if c2.Info().Channel == c.Info().Channel {
		t.Errorf("second host got channel %08x again", c.Info().Channel)
	}
	if got, err := c2.Ping(t.Context(), []byte("hi")); err != nil || string(got) != "hi" {
		t.Errorf("second host Ping = %q, %v", got, err)
	}
}

// rawUDP is a UDP socket connected to l that speaks raw reports.
func rawUDP(t *testing.T, l *UDPListener) *net.UDPConn {
	t.Helper()
	conn, err := net.DialUDP("udp", nil, l.Addr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// initReport is a CTAPHID_INIT request on cid.
func initReport(cid uint32) []byte {
	r := make([]byte, ReportSize)
	binary.BigEndian.PutUint32(r, cid)
	r[4] = typeInit | CmdInit
	r[6] = 8
	copy(r[7:], "12345678")
	return r
}

// rawChannel allocates a channel over conn.
func rawChannel(t *testing.T, conn *net.UDPConn) uint32 {
	t.Helper()
	if _, err := conn.Write(initReport(BroadcastCID)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, ReportSize)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no INIT answer: %v", err)
		}
		if n == ReportSize && buf[4] == typeInit|CmdInit && bytes.Equal(buf[7:15], []byte("12345678")) {
			return binary.BigEndian.Uint32(buf[15:19])
		}
	}
}

// TestUDPPeersIsolated runs several UDP hosts at once: one floods INIT and
// garbage, one holds an unfinished message and the channel lock, one only
// sends a byte (a thief hoping for others' replies), and an honest client
// must complete every one of its operations meanwhile, its answers reaching
// nobody else (issue 11, point 1).
func TestUDPPeersIsolated(t *testing.T) {
	f := newFake()
	l := serveUDP(t, f)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	// The flooder.
	flood := rawUDP(t, l)
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(1, 2))
		junk := make([]byte, ReportSize)
		for ctx.Err() == nil {
			_, _ = flood.Write(initReport(BroadcastCID))
			for i := range junk {
				junk[i] = byte(rng.Uint32())
			}
			_, _ = flood.Write(junk[:1+rng.IntN(ReportSize)])
			time.Sleep(50 * time.Microsecond)
		}
	})
	// The holder: a lock, then a message it never finishes.
	hold := rawUDP(t, l)
	cid := rawChannel(t, hold)
	lock := make([]byte, ReportSize)
	binary.BigEndian.PutUint32(lock, cid)
	lock[4], lock[6], lock[7] = typeInit|CmdLock, 1, 10
	unfinished := make([]byte, ReportSize)
	binary.BigEndian.PutUint32(unfinished, cid)
	unfinished[4], unfinished[5] = typeInit|CmdCBOR, 4 // 1024 bytes announced
	for _, r := range [][]byte{lock, unfinished} {
		if _, err := hold.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	wg.Go(func() { // keep its message alive (a continuation every 100ms)
		for seq := byte(0); ctx.Err() == nil && seq < 16; seq++ {
			time.Sleep(100 * time.Millisecond)
			cont := make([]byte, ReportSize)
			binary.BigEndian.PutUint32(cont, cid)
			cont[4] = seq
			_, _ = hold.Write(cont)
		}
	})

	// The honest client: every operation succeeds.
	c, err := Dial(ctx, "udp:"+l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const ops = 100
	for i := range ops {
		req := append([]byte{0x01}, pattern(100+i)...)
		got, err := c.CBOR(ctx, req)
		if err != nil || !bytes.Equal(got, append([]byte{0}, req...)) {
			t.Fatalf("honest operation %d of %d: %x, %v", i+1, ops, got, err)
		}
	}

	// The thief sends one byte while the honest client waits for a touch:
	// it must receive none of the keepalives nor the answer.
	thief := rawUDP(t, l)
	done := make(chan error, 1)
	rctx, rcancel := context.WithCancel(ctx)
	go func() {
		_, err := c.CBOR(rctx, []byte{fakeBlockUP})
		done <- err
	}()
	select {
	case <-f.started:
	case <-time.After(5 * time.Second):
		t.Fatal("the blocking request never started")
	}
	if _, err := thief.Write([]byte{0}); err != nil {
		t.Fatal(err)
	}
	_ = thief.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	buf := make([]byte, ReportSize)
	if n, err := thief.Read(buf); err == nil {
		t.Errorf("the thief received %x", buf[:n])
	}
	rcancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the cancelled request never ended")
	}
	// The honest client still works after the cancel.
	if got, err := c.Ping(ctx, []byte("after")); err != nil || string(got) != "after" {
		t.Errorf("Ping after cancel = %q, %v", got, err)
	}
}

// TestUDPBusyAcrossPeers: a request from one peer while another peer's
// runs is answered ERR_CHANNEL_BUSY at once, not left hanging.
func TestUDPBusyAcrossPeers(t *testing.T) {
	f := newFake()
	l := serveUDP(t, f)
	c1, err := Dial(t.Context(), "udp:"+l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	rctx, rcancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := c1.CBOR(rctx, []byte{fakeBlockUP})
		done <- err
	}()
	<-f.started
	c2, err := Dial(t.Context(), "udp:"+l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	if _, err := c2.CBOR(ctx, []byte{0x04}); !errors.Is(err, ErrChannelBusy) {
		t.Errorf("second peer during a transaction: %v, want ERR_CHANNEL_BUSY", err)
	}
	rcancel()
	<-done
}

func TestUDPDialNoDevice(t *testing.T) {
	l, err := ListenUDP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if c, err := Dial(ctx, "udp:"+addr); err == nil {
		c.Close()
		t.Fatal("Dial succeeded with nobody listening")
	}
}

// TestUDPPeerEviction: past the peer limit, a newcomer takes the place of
// the peer quiet the longest, and the listener stays bounded.
func TestUDPPeerEviction(t *testing.T) {
	l := serveUDP(t, newFake())
	l.mu.Lock()
	l.quiet = 0
	l.mu.Unlock()
	for range DefaultUDPPeers + 8 {
		conn := rawUDP(t, l)
		rawChannel(t, conn)
	}
	l.mu.Lock()
	n := len(l.peers)
	l.mu.Unlock()
	if n > DefaultUDPPeers {
		t.Errorf("%d peers kept, want at most %d", n, DefaultUDPPeers)
	}
}

// TestUDPBusyPeerKept: a peer waiting for a touch (receiving keepalives)
// is not dropped for newcomers, however many: they are ignored instead.
func TestUDPBusyPeerKept(t *testing.T) {
	f := newFake()
	l := serveUDP(t, f)
	const quiet = 200 * time.Millisecond
	l.mu.Lock()
	l.quiet = quiet
	l.mu.Unlock()
	c, err := Dial(t.Context(), "udp:"+l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	done := make(chan error, 1)
	go func() {
		_, err := c.CBOR(t.Context(), []byte{fakeIgnore})
		done <- err
	}()
	<-f.started
	time.Sleep(2 * quiet)
	answered := 0
	for range DefaultUDPPeers + 8 {
		conn := rawUDP(t, l)
		if _, err := conn.Write(initReport(BroadcastCID)); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := conn.Read(make([]byte, ReportSize)); err == nil {
			answered++
		}
	}
	if answered >= DefaultUDPPeers+8 {
		t.Errorf("all %d newcomers were served: the limit is %d", answered, DefaultUDPPeers)
	}
	close(f.release)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("the waiting peer: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting peer never got its answer")
	}
}

// cancelRecorder is a handler that records CancelChannel calls.
type cancelRecorder struct {
	*fakeHandler
	cancelled chan uint32
	channel   chan uint32
}

func (c *cancelRecorder) CancelChannel(cid uint32) { c.cancelled <- cid }

func (c *cancelRecorder) HandleMSG(ctx context.Context, apdu []byte) []byte {
	cid, _ := Channel(ctx)
	c.channel <- cid
	return c.fakeHandler.HandleMSG(ctx, apdu)
}

// TestCancelReachesHandler: CTAPHID_CANCEL on a channel with nothing
// running still tells the handler (a U2F touch asked for between polls is
// withdrawn), and the handler learns each request's channel.
func TestCancelReachesHandler(t *testing.T) {
	h := &cancelRecorder{fakeHandler: newFake(), cancelled: make(chan uint32, 4), channel: make(chan uint32, 4)}
	l := serveUDP(t, h)
	c, err := Dial(t.Context(), "udp:"+l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.MSG(t.Context(), []byte{0, 3, 0, 0}); err != nil {
		t.Fatal(err)
	}
	if got := <-h.channel; got != c.Info().Channel {
		t.Errorf("Channel(ctx) = %08x, want %08x", got, c.Info().Channel)
	}
	// Another peer cancelling that channel reaches nothing.
	other := rawUDP(t, l)
	rawChannel(t, other)
	cancel := make([]byte, ReportSize)
	binary.BigEndian.PutUint32(cancel, c.Info().Channel)
	cancel[4] = typeInit | CmdCancel
	if _, err := other.Write(cancel); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Write(initReport(c.Info().Channel)); err != nil { // a resync attempt
		t.Fatal(err)
	}
	select {
	case got := <-h.cancelled:
		t.Fatalf("another peer cancelled channel %08x", got)
	case <-time.After(200 * time.Millisecond):
	}
	if err := c.Cancel(); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-h.cancelled:
		if got != c.Info().Channel {
			t.Errorf("CancelChannel(%08x), want %08x", got, c.Info().Channel)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("CTAPHID_CANCEL never reached the handler")
	}
}
