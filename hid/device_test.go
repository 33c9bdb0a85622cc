package hid

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"runtime"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// Commands the fake handler understands (first byte of a CBOR message).
const (
	fakeBlock       = 0x40 // wait for ctx, then answer CTAP2_ERR_KEEPALIVE_CANCEL
	fakeBlockUP     = 0x41 // same, after UserPresenceNeeded
	fakePanic       = 0x42 // panic
	fakeBig         = 0x43 // answer 3000 bytes
	fakeHuge        = 0x44 // answer more than the framing can carry
	fakeIgnore      = 0x45 // ignore ctx: return only when released
	fakeWhere       = 0x46 // answer 1 if called on a Client's goroutine
	keepaliveCancel = 0x2d
)

// fakeHandler echoes CBOR (status 0 + the message) and APDUs (+ 9000), and
// blocks, panics or answers big on request.
type fakeHandler struct {
	started chan context.Context // a blocking request's ctx
	release chan struct{}        // releases fakeIgnore
	calls   atomic.Int32
}

func newFake() *fakeHandler {
	return &fakeHandler{started: make(chan context.Context, 8), release: make(chan struct{})}
}

func (f *fakeHandler) HandleCBOR(ctx context.Context, msg []byte) []byte {
	f.calls.Add(1)
	switch msg[0] {
	case fakeBlockUP:
		UserPresenceNeeded(ctx)
		fallthrough
	case fakeBlock:
		f.started <- ctx
		<-ctx.Done()
		return []byte{keepaliveCancel}
	case fakeIgnore:
		f.started <- ctx
		<-f.release
		return []byte{0}
	case fakePanic:
		panic("fake handler panic")
	case fakeBig:
		return append([]byte{0}, pattern(2999)...)
	case fakeHuge:
		return make([]byte, MaxFramedSize+1)
	case fakeWhere:
		stack := make([]byte, 64<<10)
		stack = stack[:runtime.Stack(stack, false)]
		if bytes.Contains(stack, []byte("hid.(*Client).transact")) {
			return []byte{0, 1}
		}
		return []byte{0, 0}
	}
	return append([]byte{0}, msg...)
}

func (f *fakeHandler) HandleMSG(ctx context.Context, apdu []byte) []byte {
	f.calls.Add(1)
	return append(bytes.Clone(apdu), 0x90, 0x00)
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	return b
}

// msg is a reassembled message from the device.
type msg struct {
	cid  uint32
	cmd  byte
	data []byte
}

// rig drives a Device through the raw host end of a Pipe.
type rig struct {
	t      *testing.T
	h      *fakeHandler
	host   Port
	in     chan []byte
	done   chan struct{}
	cancel context.CancelFunc
	served chan error
}

func newRig(t *testing.T, cfg DeviceConfig) *rig {
	t.Helper()
	host, dev := Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	r := &rig{t: t, h: newFake(), host: host, in: make(chan []byte), done: make(chan struct{}),
		cancel: cancel, served: make(chan error, 1)}
	d := NewDevice(r.h, cfg)
	go func() { r.served <- d.Serve(ctx, dev) }()
	go func() {
		defer close(r.in)
		for {
			rep, err := host.ReadReport()
			if err != nil {
				return
			}
			select {
			case r.in <- rep:
			case <-r.done:
				return
			}
		}
	}()
	return r
}

// stop ends Serve and returns its error.
func (r *rig) stop() error {
	r.cancel()
	err := <-r.served
	close(r.done)
	_ = r.host.Close()
	for range r.in {
	}
	return err
}

func (r *rig) write(rep []byte) {
	r.t.Helper()
	if err := r.host.WriteReport(rep); err != nil {
		r.t.Fatalf("write report: %v", err)
	}
}

func (r *rig) send(cid uint32, cmd byte, data []byte) {
	r.t.Helper()
	if err := fragment(cid, cmd, data, r.host.WriteReport); err != nil {
		r.t.Fatalf("send: %v", err)
	}
}

// initPacket builds an initialization packet claiming bcnt bytes.
func initPacket(cid uint32, cmd byte, bcnt int, data []byte) []byte {
	rep := make([]byte, ReportSize)
	binary.BigEndian.PutUint32(rep, cid)
	rep[4] = 0x80 | cmd
	binary.BigEndian.PutUint16(rep[5:], uint16(bcnt))
	copy(rep[7:], data)
	return rep
}

func contPacket(cid uint32, seq byte, data []byte) []byte {
	rep := make([]byte, ReportSize)
	binary.BigEndian.PutUint32(rep, cid)
	rep[4] = seq
	copy(rep[5:], data)
	return rep
}

// report returns the next report (fake time: a minute means never).
func (r *rig) report() []byte {
	r.t.Helper()
	select {
	case rep, ok := <-r.in:
		if !ok {
			r.t.Fatal("port closed")
		}
		return rep
	case <-time.After(time.Minute):
		r.t.Fatal("no report from the device")
	}
	return nil
}

// recv reassembles the next message, keepalives included.
func (r *rig) recv() msg {
	r.t.Helper()
	p, ok := parsePacket(r.report())
	if !ok || !p.init {
		r.t.Fatalf("expected an initialization packet, got %+v", p)
	}
	m := msg{cid: p.cid, cmd: p.cmd, data: bytes.Clone(p.data[:min(p.bcnt, initPayload)])}
	for seq := byte(0); len(m.data) < p.bcnt; seq++ {
		c, _ := parsePacket(r.report())
		if c.init || c.cid != p.cid || c.seq != seq {
			r.t.Fatalf("bad continuation %+v (want seq %d)", c, seq)
		}
		m.data = append(m.data, c.data[:min(p.bcnt-len(m.data), contPayload)]...)
	}
	return m
}

// recvSkip is recv without keepalives.
func (r *rig) recvSkip() msg {
	r.t.Helper()
	for {
		if m := r.recv(); m.cmd != CmdKeepalive {
			return m
		}
	}
}

// expect checks the next non-keepalive message.
func (r *rig) expect(cid uint32, cmd byte, data []byte) {
	r.t.Helper()
	m := r.recvSkip()
	if m.cid != cid || m.cmd != cmd || !bytes.Equal(m.data, data) {
		r.t.Fatalf("got cid %08x cmd %02x data %x; want cid %08x cmd %02x data %x",
			m.cid, m.cmd, m.data, cid, cmd, data)
	}
}

func (r *rig) expectError(cid uint32, e Error) {
	r.t.Helper()
	r.expect(cid, CmdError, []byte{byte(e)})
}

// quiet checks the device sent nothing once every goroutine is idle.
func (r *rig) quiet() {
	r.t.Helper()
	synctest.Wait()
	select {
	case rep := <-r.in:
		r.t.Fatalf("unexpected report %x", rep)
	default:
	}
}

// init allocates a channel.
func (r *rig) init() uint32 {
	r.t.Helper()
	nonce := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	r.send(BroadcastCID, CmdInit, nonce)
	m := r.recv()
	if m.cid != BroadcastCID || m.cmd != CmdInit || len(m.data) != 17 || !bytes.Equal(m.data[:8], nonce) {
		r.t.Fatalf("bad INIT answer %+v", m)
	}
	return binary.BigEndian.Uint32(m.data[8:12])
}

// engineTest runs f in a synctest bubble (fake time, and a failure if a
// goroutine is left behind) against a fresh device.
func engineTest(t *testing.T, cfg DeviceConfig, f func(r *rig)) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, cfg)
		t.Cleanup(func() {
			if err := r.stop(); !errors.Is(err, context.Canceled) {
				t.Errorf("Serve returned %v, want context.Canceled", err)
			}
		})
		f(r)
	})
}

func TestInit(t *testing.T) {
	engineTest(t, DeviceConfig{VersionMajor: 1, VersionMinor: 2, VersionBuild: 3}, func(r *rig) {
		nonce := []byte("abcdefgh")
		r.send(BroadcastCID, CmdInit, nonce)
		m := r.recv()
		if m.cid != BroadcastCID || m.cmd != CmdInit || len(m.data) != 17 {
			r.t.Fatalf("INIT answer %+v", m)
		}
		if !bytes.Equal(m.data[:8], nonce) {
			t.Errorf("nonce %x, want %x", m.data[:8], nonce)
		}
		cid := binary.BigEndian.Uint32(m.data[8:12])
		if cid == 0 || cid == BroadcastCID {
			t.Errorf("allocated channel %08x", cid)
		}
		if got := m.data[12:]; !bytes.Equal(got, []byte{2, 1, 2, 3, CapabilityWink | CapabilityCBOR}) {
			t.Errorf("version and capabilities %x", got)
		}
		if other := r.init(); other == cid {
			t.Errorf("second INIT got the same channel %08x", cid)
		}
		// INIT on an allocated channel answers on it, with it.
		r.send(cid, CmdInit, nonce)
		want := append(append(bytes.Clone(nonce), m.data[8:12]...), m.data[12:]...)
		r.expect(cid, CmdInit, want)
	})
}

func TestInitErrors(t *testing.T) {
	engineTest(t, DeviceConfig{}, func(r *rig) {
		r.send(BroadcastCID, CmdInit, []byte{1, 2, 3})
		r.expectError(BroadcastCID, ErrInvalidLen)
		r.send(0x1234, CmdInit, pattern(8)) // never allocated
		r.expectError(0x1234, ErrInvalidChannel)
		r.send(0, CmdInit, pattern(8))
		r.expectError(0, ErrInvalidChannel)
	})
}

func TestChannelErrors(t *testing.T) {
	engineTest(t, DeviceConfig{}, func(r *rig) {
		r.send(BroadcastCID, CmdPing, []byte{1})
		r.expectError(BroadcastCID, ErrInvalidChannel)
		r.send(0, CmdPing, []byte{1})
		r.expectError(0, ErrInvalidChannel)
		r.send(77, CmdPing, []byte{1})
		r.expectError(77, ErrInvalidChannel)
	})
}

func TestPing(t *testing.T) {
	engineTest(t, DeviceConfig{}, func(r *rig) {
		cid := r.init()
		for _, n := range []int{0, 1, 57, 58, 116, 117, 1200} {
			data := pattern(n)
			r.send(cid, CmdPing, data)
			r.expect(cid, CmdPing, data)
		}
		r.send(cid, CmdPing, pattern(1201))
		r.expectError(cid, ErrInvalidLen)
		r.quiet() // the continuation packets of the refused message were ignored
	})
}

func TestMaxMsgSize(t *testing.T) {
	engineTest(t, DeviceConfig{MaxMsgSize: 7609}, func(r *rig) {
		cid := r.init()
		data := pattern(MaxFramedSize) // seq 0..127
		r.send(cid, CmdPing, data)
		r.expect(cid, CmdPing, data)
	})
}

func TestCBOR(t *testing.T) {
	engineTest(t, DeviceConfig{}, func(r *rig) {
		cid := r.init()
		req := append([]byte{0x04}, pattern(300)...)
		r.send(cid, CmdCBOR, req)
		r.expect(cid, CmdCBOR, append([]byte{0}, req...))
		r.send(cid, CmdCBOR, []byte{fakeBig})
		r.expect(cid, CmdCBOR, append([]byte{0}, pattern(2999)...))
		r.send(cid, CmdCBOR, nil)
		r.expectError(cid, ErrInvalidLen)
	})
}

func TestCBORNotSupported(t *testing.T) {
	engineTest(t, DeviceConfig{Capabilities: CapabilityWink}, func(r *rig) {
		cid := r.init()
		r.send(cid, CmdCBOR, []byte{4})
		r.expectError(cid, ErrInvalidCmd)
	})
}

func TestMSG(t *testing.T) {
	engineTest(t, DeviceConfig{}, func(r *rig) {
		cid := r.init()
		apdu := []byte{0, 3, 0, 0, 0}
		r.send(cid, CmdMsg, apdu)
		r.expect(cid, CmdMsg, append(bytes.Clone(apdu), 0x90, 0))
		r.send(cid, CmdMsg, nil)
		r.expectError(cid, ErrInvalidLen)
	})
	engineTest(t, DeviceConfig{Capabilities: CapabilityCBOR | CapabilityNMSG}, func(r *rig) {
		cid := r.init()
		r.send(cid, CmdMsg, []byte{0, 3, 0, 0, 0})
		r.expectError(cid, ErrInvalidCmd)
		if n := r.h.calls.Load(); n != 0 {
			t.Errorf("handler called %d times", n)
		}
	})
}

func TestWink(t *testing.T) {
	var winks atomic.Int32
	engineTest(t, DeviceConfig{Wink: func() { winks.Add(1) }}, func(r *rig) {
		cid := r.init()
		r.send(cid, CmdWink, nil)
		r.expect(cid, CmdWink, []byte{})
		if winks.Load() != 1 {
			t.Errorf("Wink called %d times", winks.Load())
		}
		r.send(cid, CmdWink, []byte{1})
		r.expectError(cid, ErrInvalidLen)
	})
	engineTest(t, DeviceConfig{Capabilities: CapabilityCBOR}, func(r *rig) {
		cid := r.init()
		r.send(cid, CmdWink, nil)
		r.expectError(cid, ErrInvalidCmd)
	})
}

func TestInvalidCmd(t *testing.T) {
	engineTest(t, DeviceConfig{}, func(r *rig) {
		cid := r.init()
		for _, cmd := range []byte{CmdKeepalive, CmdError, 0x00, 0x02, 0x50, 0x7f} {
			r.send(cid, cmd, []byte{1, 2})
			r.expectError(cid, ErrInvalidCmd)
		}
	})
}

func TestLock(t *testing.T) {
	engineTest(t, DeviceConfig{}, func(r *rig) {
		a, b := r.init(), r.init()
		r.send(a, CmdLock, []byte{11})
		r.expectError(a, ErrInvalidPar)
		r.send(a, CmdLock, []byte{1, 2})
		r.expectError(a, ErrInvalidLen)

		r.send(a, CmdLock, []byte{5})
		r.expect(a, CmdLock, []byte{})
		r.send(b, CmdPing, []byte{1})
		r.expectError(b, ErrLockRequired)
		r.send(b, CmdInit, pattern(8))
		r.expectError(b, ErrLockRequired)
		r.send(a, CmdPing, []byte{2})
		r.expect(a, CmdPing, []byte{2})
		c := r.init() // allocation still works on the broadcast channel
		r.send(c, CmdCBOR, []byte{4})
		r.expectError(c, ErrLockRequired)

		// Release with 0.
		r.send(a, CmdLock, []byte{0})
		r.expect(a, CmdLock, []byte{})
		r.send(b, CmdPing, []byte{3})
		r.expect(b, CmdPing, []byte{3})

		// Expiry (fake time).
		r.send(a, CmdLock, []byte{2})
		r.expect(a, CmdLock, []byte{})
		time.Sleep(1900 * time.Millisecond)
		r.send(b, CmdPing, []byte{4})
		r.expectError(b, ErrLockRequired)
		time.Sleep(200 * time.Millisecond)
		r.send(b, CmdPing, []byte{5})
		r.expect(b, CmdPing, []byte{5})
	})
}

func TestInvalidSeq(t *testing.T) {
	engineTest(t, DeviceConfig{}, func(r *rig) {
		cid := r.init()
		// A continuation packet out of order.
		r.write(initPacket(cid, CmdPing, 200, pattern(57)))
		r.write(contPacket(cid, 0, pattern(59)))
		r.write(contPacket(cid, 2, pattern(59)))
		r.expectError(cid, ErrInvalidSeq)
		r.write(contPacket(cid, 1, pattern(59))) // now spurious: ignored
		r.quiet()
		// A new request before the last one was complete.
		r.write(initPacket(cid, CmdPing, 100, pattern(57)))
		r.write(initPacket(cid, CmdPing, 1, []byte{9}))
		r.expectError(cid, ErrInvalidSeq)
		r.send(cid, CmdPing, []byte{1})
		r.expect(cid, CmdPing, []byte{1})
	})
}

func TestSpuriousContinuation(t *testing.T) {
	engineTest(t, DeviceConfig{}, func(r *rig) {
		cid := r.init()
		r.write(contPacket(cid, 0, pattern(59)))
		r.write(contPacket(BroadcastCID, 5, nil))
		r.write([]byte{1, 2, 3}) // too short to mean anything
		r.quiet()
		r.send(cid, CmdPing, []byte{7})
		r.expect(cid, CmdPing, []byte{7})
	})
}

func TestShortReportPadded(t *testing.T) {
	engineTest(t, DeviceConfig{}, func(r *rig) {
		cid := r.init()
		rep := initPacket(cid, CmdPing, 3, []byte{1, 2, 3})
		r.write(rep[:10]) // bytes past the data cut off
		r.expect(cid, CmdPing, []byte{1, 2, 3})
	})
}

func TestMsgTimeout(t *testing.T) {
	engineTest(t, DeviceConfig{}, func(r *rig) {
		cid := r.init()
		r.write(initPacket(cid, CmdPing, 200, pattern(57)))
		start := time.Now()
		r.write(contPacket(cid, 0, pattern(59)))
		r.expectError(cid, ErrMsgTimeout)
		if d := time.Since(start); d != DefaultMsgTimeout {
			t.Errorf("timed out after %v, want %v after the last packet", d, DefaultMsgTimeout)
		}
		r.write(contPacket(cid, 1, pattern(59))) // late: ignored
		r.quiet()
		r.send(cid, CmdPing, []byte{1})
		r.expect(cid, CmdPing, []byte{1})
	})
}

func TestChannelBusy(t *testing.T) {
	engineTest(t, DeviceConfig{}, func(r *rig) {
		a, b := r.init(), r.init()
		// While a's message is incomplete.
		r.write(initPacket(a, CmdPing, 100, pattern(57)))
		r.send(b, CmdPing, []byte{1})
		r.expectError(b, ErrChannelBusy)
		r.write(contPacket(b, 0, pattern(59))) // another channel's continuation: ignored
		r.write(contPacket(a, 0, pattern(59)))
		r.expect(a, CmdPing, append(pattern(57), pattern(59)[:43]...))
	})
}

func TestChannelBusyWhileHandlerRuns(t *testing.T) {
	engineTest(t, DeviceConfig{}, func(r *rig) {
		a, b := r.init(), r.init()
		r.send(a, CmdCBOR, []byte{fakeBlock})
		ctx := <-r.h.started
		r.send(b, CmdPing, []byte{1})
		r.expectError(b, ErrChannelBusy)
		r.send(a, CmdPing, []byte{1})
		r.expectError(a, ErrChannelBusy)
		// INIT on the broadcast channel is still answered.
		r.init()
		// A CANCEL from another channel does nothing.
		r.send(b, CmdCancel, nil)
		r.quiet()
		if ctx.Err() != nil {
			t.Fatal("another channel's CANCEL cancelled the request")
		}
		r.send(a, CmdCancel, nil)
		r.expect(a, CmdCBOR, []byte{keepaliveCancel})
		r.send(b, CmdPing, []byte{2})
		r.expect(b, CmdPing, []byte{2})
	})
}

func TestKeepaliveAndCancel(t *testing.T) {
	engineTest(t, DeviceConfig{}, func(r *rig) {
		cid := r.init()
		r.send(cid, CmdCBOR, []byte{fakeBlock})
		ctx := <-r.h.started
		start := time.Now()
		for i := 1; i <= 3; i++ {
			m := r.recv()
			if m.cid != cid || m.cmd != CmdKeepalive || !bytes.Equal(m.data, []byte{StatusProcessing}) {
				t.Fatalf("keepalive %d: %+v", i, m)
			}
			if d := time.Since(start); d != time.Duration(i)*DefaultKeepaliveInterval {
				t.Errorf("keepalive %d after %v", i, d)
			}
		}
		r.send(cid, CmdCancel, nil)
		r.expect(cid, CmdCBOR, []byte{keepaliveCancel})
		if ctx.Err() == nil {
			t.Error("handler context not cancelled")
		}
		r.quiet() // no answer to the CANCEL, no more keepalives
	})
}

func TestKeepaliveUPNeeded(t *testing.T) {
	engineTest(t, DeviceConfig{KeepaliveInterval: 20 * time.Millisecond}, func(r *rig) {
		cid := r.init()
		r.send(cid, CmdCBOR, []byte{fakeBlockUP})
		<-r.h.started
		m := r.recv()
		if m.cmd != CmdKeepalive || !bytes.Equal(m.data, []byte{StatusUPNeeded}) {
			t.Fatalf("keepalive %+v", m)
		}
		r.send(cid, CmdCancel, nil)
		r.expect(cid, CmdCBOR, []byte{keepaliveCancel})
	})
}

func TestCancelIdle(t *testing.T) {
	engineTest(t, DeviceConfig{}, func(r *rig) {
		cid := r.init()
		r.send(cid, CmdCancel, nil)
		r.send(BroadcastCID, CmdCancel, nil)
		r.quiet()
		// CANCEL discards a partial request.
		r.write(initPacket(cid, CmdPing, 100, pattern(57)))
		r.send(cid, CmdCancel, nil)
		r.write(contPacket(cid, 0, pattern(59)))
		r.quiet()
	})
}

func TestInitAbortsTransaction(t *testing.T) {
	engineTest(t, DeviceConfig{}, func(r *rig) {
		cid := r.init()
		r.send(cid, CmdCBOR, []byte{fakeBlock})
		ctx := <-r.h.started
		nonce := pattern(8)
		r.send(cid, CmdInit, nonce)
		m := r.recvSkip()
		if m.cmd != CmdInit || m.cid != cid || binary.BigEndian.Uint32(m.data[8:12]) != cid {
			t.Fatalf("INIT answer %+v", m)
		}
		<-ctx.Done()
		r.quiet() // the aborted request's answer is dropped
		r.send(cid, CmdCBOR, []byte{4})
		r.expect(cid, CmdCBOR, []byte{0, 4})
	})
}

func TestInitDiscardsPartialRequest(t *testing.T) {
	engineTest(t, DeviceConfig{}, func(r *rig) {
		cid := r.init()
		r.write(initPacket(cid, CmdPing, 100, pattern(57)))
		r.send(cid, CmdInit, pattern(8))
		if m := r.recv(); m.cmd != CmdInit {
			t.Fatalf("INIT answer %+v", m)
		}
		r.write(contPacket(cid, 0, pattern(59))) // spurious now
		r.quiet()
	})
}

func TestHandlerFailures(t *testing.T) {
	engineTest(t, DeviceConfig{}, func(r *rig) {
		cid := r.init()
		r.send(cid, CmdCBOR, []byte{fakePanic})
		r.expectError(cid, ErrOther)
		r.send(cid, CmdCBOR, []byte{fakeHuge})
		r.expectError(cid, ErrOther)
		r.send(cid, CmdCBOR, []byte{4})
		r.expect(cid, CmdCBOR, []byte{0, 4})
	})
}

func TestServeStopsRunningHandler(t *testing.T) {
	engineTest(t, DeviceConfig{}, func(r *rig) {
		cid := r.init()
		r.send(cid, CmdCBOR, []byte{fakeBlock})
		<-r.h.started
		// engineTest's stop cancels Serve's context: Serve must cancel the
		// handler, wait for it and return.
	})
}

func TestServeReturnsWhenPortFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		host, dev := Pipe()
		d := NewDevice(newFake(), DeviceConfig{})
		served := make(chan error, 1)
		go func() { served <- d.Serve(context.Background(), dev) }()
		_ = host.Close()
		if err := <-served; err == nil || errors.Is(err, context.Canceled) {
			t.Errorf("Serve returned %v, want the port's error", err)
		}
	})
}

func TestServeUnblocksWrite(t *testing.T) {
	// A host that never reads: the device blocks writing keepalives, and
	// cancelling Serve must still end everything.
	synctest.Test(t, func(t *testing.T) {
		host, dev := Pipe()
		h := newFake()
		d := NewDevice(h, DeviceConfig{KeepaliveInterval: time.Millisecond})
		ctx, cancel := context.WithCancel(context.Background())
		served := make(chan error, 1)
		go func() { served <- d.Serve(ctx, dev) }()
		if err := fragment(BroadcastCID, CmdInit, pattern(8), host.WriteReport); err != nil {
			t.Fatal(err)
		}
		rep, _ := host.ReadReport()
		p, _ := parsePacket(rep)
		cid := binary.BigEndian.Uint32(p.data[8:12])
		if err := fragment(cid, CmdCBOR, []byte{fakeBlock}, host.WriteReport); err != nil {
			t.Fatal(err)
		}
		<-h.started
		time.Sleep(time.Second) // far more keepalives than the pipe holds
		synctest.Wait()
		cancel()
		if err := <-served; !errors.Is(err, context.Canceled) {
			t.Errorf("Serve returned %v", err)
		}
		_ = host.Close()
	})
}

func TestOneTransactionPerDevice(t *testing.T) {
	// Two ports served by one device: a request on the second port while a
	// handler runs for the first gets ERR_CHANNEL_BUSY.
	synctest.Test(t, func(t *testing.T) {
		h := newFake()
		d := NewDevice(h, DeviceConfig{})
		ctx, cancel := context.WithCancel(context.Background())
		var served [2]chan error
		var hosts [2]Port
		for i := range hosts {
			host, dev := Pipe()
			hosts[i] = host
			served[i] = make(chan error, 1)
			go func() { served[i] <- d.Serve(ctx, dev) }()
		}
		var cids [2]uint32
		for i, host := range hosts {
			_ = fragment(BroadcastCID, CmdInit, pattern(8), host.WriteReport)
			rep, _ := host.ReadReport()
			p, _ := parsePacket(rep)
			cids[i] = binary.BigEndian.Uint32(p.data[8:12])
		}
		if cids[0] == cids[1] {
			t.Fatalf("both ports got channel %08x", cids[0])
		}
		_ = fragment(cids[0], CmdCBOR, []byte{fakeIgnore}, hosts[0].WriteReport)
		<-h.started
		_ = fragment(cids[1], CmdCBOR, []byte{4}, hosts[1].WriteReport)
		rep, _ := hosts[1].ReadReport()
		if p, _ := parsePacket(rep); p.cmd != CmdError || p.data[0] != byte(ErrChannelBusy) {
			t.Errorf("second port got %x", rep[:8])
		}
		close(h.release)
		cancel()
		for i := range served {
			<-served[i]
			_ = hosts[i].Close()
		}
	})
}
