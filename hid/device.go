package hid

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Handler is what a CTAPHID device serves; *ctap2.Authenticator satisfies it.
//
// Calls come one at a time per [Device], while the engine keeps serving the
// port (keepalives, CTAPHID_CANCEL, other channels). ctx is cancelled when
// the host sends CTAPHID_CANCEL on the channel, resynchronizes the channel
// with CTAPHID_INIT, or the device stops: a handler waiting for user
// presence must then return promptly (CTAP2 answers
// CTAP2_ERR_KEEPALIVE_CANCEL, which the engine sends as the reply unless
// the channel was resynchronized). msg and apdu belong to the handler.
type Handler interface {
	// HandleCBOR serves a CTAPHID_CBOR message: msg is the command byte
	// followed by CBOR; the result is a status byte followed by CBOR.
	HandleCBOR(ctx context.Context, msg []byte) []byte
	// HandleMSG serves a CTAPHID_MSG message: a raw U2F (CTAP1) request
	// APDU; the result is the response APDU including the status word.
	HandleMSG(ctx context.Context, apdu []byte) []byte
}

// Port carries 64-byte HID reports between the CTAPHID engine and one host.
type Port interface {
	// ReadReport blocks for the next 64-byte output report from the host
	// and returns a slice the caller owns (not a reused buffer). It returns
	// an error after Close.
	ReadReport() ([]byte, error)
	// WriteReport sends one 64-byte input report to the host. It must not
	// keep report after it returns.
	WriteReport(report []byte) error
	// Close releases the port and unblocks ReadReport and WriteReport.
	Close() error
}

// DeviceConfig configures a [Device]. The zero value is usable.
type DeviceConfig struct {
	// MaxMsgSize is the largest request message accepted, in bytes
	// (default 1200, the maxMsgSize a CTAP2 getInfo advertises; at most
	// MaxFramedSize).
	MaxMsgSize int
	// Capabilities is the CTAPHID_INIT capability byte (default
	// CapabilityWink|CapabilityCBOR). Add CapabilityNMSG when the handler
	// does not implement U2F: CTAPHID_MSG then fails with ERR_INVALID_CMD.
	Capabilities byte
	// VersionMajor, VersionMinor and VersionBuild are the device version
	// numbers of the CTAPHID_INIT response.
	VersionMajor, VersionMinor, VersionBuild byte
	// MsgTimeout bounds the wait for the next packet of an incomplete
	// message before ERR_MSG_TIMEOUT (default 500ms).
	MsgTimeout time.Duration
	// KeepaliveInterval is the period of CTAPHID_KEEPALIVE while a handler
	// runs (default 100ms).
	KeepaliveInterval time.Duration
	// Wink, if set, is called for CTAPHID_WINK. It must not block.
	Wink func()
	// Logger receives debug lines about the protocol (never message
	// contents); nil discards them.
	Logger *slog.Logger
}

// Defaults of [DeviceConfig].
const (
	DefaultMaxMsgSize        = 1200
	DefaultMsgTimeout        = 500 * time.Millisecond
	DefaultKeepaliveInterval = 100 * time.Millisecond
)

// Device is a CTAPHID device (CTAP 2.1 section 11.2) serving a [Handler].
// It runs one transaction at a time, even when it serves several ports.
type Device struct {
	h   Handler
	cfg DeviceConfig
	log *slog.Logger

	// busy holds a token while a handler runs: one transaction at a time.
	busy chan struct{}

	mu      sync.Mutex
	lastCID uint32 // last channel allocated
	wrapped bool   // every channel id has been handed out once
}

// NewDevice returns a device serving h, with cfg's zero fields set to their
// defaults.
func NewDevice(h Handler, cfg DeviceConfig) *Device {
	if cfg.MaxMsgSize <= 0 {
		cfg.MaxMsgSize = DefaultMaxMsgSize
	}
	cfg.MaxMsgSize = min(cfg.MaxMsgSize, MaxFramedSize)
	if cfg.Capabilities == 0 {
		cfg.Capabilities = CapabilityWink | CapabilityCBOR
	}
	if cfg.MsgTimeout <= 0 {
		cfg.MsgTimeout = DefaultMsgTimeout
	}
	if cfg.KeepaliveInterval <= 0 {
		cfg.KeepaliveInterval = DefaultKeepaliveInterval
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Device{h: h, cfg: cfg, log: log, busy: make(chan struct{}, 1)}
}

// allocateCID hands out a fresh channel id, never 0 or the broadcast id.
func (d *Device) allocateCID() uint32 {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lastCID++
	if d.lastCID == BroadcastCID {
		d.lastCID, d.wrapped = 1, true
	}
	return d.lastCID
}

// allocated reports whether cid is a channel this device handed out.
func (d *Device) allocated(cid uint32) bool {
	if cid == 0 || cid == BroadcastCID {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.wrapped || cid <= d.lastCID
}

// busyDelay is how long a handler runs before a second goroutine serves
// the port meanwhile (see session.runTx).
const busyDelay = 2 * time.Millisecond

// txKey is the context key of the running transaction's state.
type txKey struct{}

// txState is what a handler's context carries for UserPresenceNeeded.
type txState struct {
	upNeeded atomic.Bool
}

// UserPresenceNeeded tells the device serving the handler whose context is
// ctx that the command now waits for user presence: the keepalives switch
// from STATUS_PROCESSING to STATUS_UPNEEDED (CTAP 2.1 section 11.2.9.2.1).
// It does nothing for a context that does not come from a Device.
func UserPresenceNeeded(ctx context.Context) {
	if t, ok := ctx.Value(txKey{}).(*txState); ok {
		t.upNeeded.Store(true)
	}
}

// Serve runs the CTAPHID engine on p until ctx is done or p fails. It closes
// p and waits for its own goroutines (and a running handler, whose context
// it cancels) before it returns. It returns ctx.Err() when ctx ends it, or
// the port's error.
//
// A device may serve several ports at once (one per host, as with ptys):
// channel ids stay unique across them and one handler runs at a time; a
// request from another port meanwhile gets ERR_CHANNEL_BUSY. The channel
// lock (CTAPHID_LOCK) is per port.
func (d *Device) Serve(ctx context.Context, p Port) error {
	ctx, cancel := context.WithCancel(ctx)
	// Closing the port is what unblocks a ReadReport or WriteReport; the
	// cancel below makes sure it happens once the loop is over.
	closed := make(chan struct{})
	context.AfterFunc(ctx, func() {
		_ = p.Close()
		close(closed)
	})

	s := &session{d: d, p: p, ctx: ctx, log: d.log, readErr: make(chan error, 1)}
	var wg sync.WaitGroup
	if cp, ok := p.(chanPort); ok {
		// In-process pipe: take its reports straight from its channel,
		// one goroutine hop less per packet.
		s.reports = cp.inbox()
		wg.Go(func() {
			if err := cp.waitClosed(ctx); err != nil {
				s.readErr <- err
			}
		})
	} else {
		rc := make(chan []byte)
		s.reports = rc
		wg.Go(func() { readLoop(ctx, p, rc, s.readErr) })
	}

	_, err := s.loop(nil)

	s.stopTimers()
	cancel()
	<-closed
	wg.Wait()
	return err
}

// chanPort is a Port whose reports come from a channel (the Pipe).
type chanPort interface {
	Port
	// inbox is the channel ReadReport reads.
	inbox() <-chan []byte
	// waitClosed returns the error ReadReport would return once the port
	// is closed, or nil when ctx is done first.
	waitClosed(ctx context.Context) error
}

// readLoop feeds the session with reports until the port fails or ctx is
// done.
func readLoop(ctx context.Context, p Port, reports chan<- []byte, readErr chan<- error) {
	for {
		r, err := p.ReadReport()
		if err != nil {
			readErr <- err // buffered: never blocks
			return
		}
		select {
		case reports <- r:
		case <-ctx.Done():
			return
		}
	}
}

// session is the state of one Serve call: the reassembly of at most one
// request, the running transaction and the channel lock.
//
// One goroutine owns it at a time. The Serve goroutine runs loop; when a
// CBOR or MSG request is complete it runs the handler itself, after handing
// the session to a second goroutine that runs loop in busy mode (answering
// other packets, CANCEL and keepalives) until the handler is done; the
// Serve goroutine then waits for that goroutine to end before it touches
// the session again. Writes to the port from both go through wmu.
type session struct {
	d   *Device
	p   Port
	ctx context.Context
	log *slog.Logger

	reports <-chan []byte
	readErr chan error

	wmu sync.Mutex // whole messages on the port

	pending []byte // a report the busy loop took after the handler finished

	rx      *reassembly // request being reassembled, or nil
	rxTimer *time.Timer // MsgTimeout since the last packet of rx

	tx        *transaction // the running handler, or nil
	keepalive *time.Ticker // runs while tx runs

	lockCID   uint32 // channel holding CTAPHID_LOCK, or 0
	lockUntil time.Time
}

// reassembly is a request whose continuation packets are still expected.
type reassembly struct {
	cid  uint32
	cmd  byte
	want int
	buf  []byte
	seq  byte // next expected sequence number
}

// transaction is a handler running on the Serve goroutine.
type transaction struct {
	cid    uint32
	state  *txState
	cancel context.CancelFunc
	stop   chan struct{} // closed once the handler has returned

	// Under session.wmu: finished once the reply is sent (no keepalive
	// after it), aborted by an INIT resynchronization (no reply at all).
	finished, aborted bool
	// done mirrors finished for the busy loop's lock-free check.
	done atomic.Bool
}

// loop is the engine's state machine. With tx == nil it is the Serve
// goroutine's loop and returns only when ctx is done, the port fails to
// read, or a write fails. With tx != nil it is the busy loop: it also sends
// keepalives, and returns when tx.stop is closed, or with the first report
// that arrives after the handler finished (for the idle loop to process).
func (s *session) loop(tx *transaction) (pending []byte, err error) {
	var keepalive <-chan time.Time
	var stop <-chan struct{}
	if tx != nil {
		keepalive, stop = s.keepalive.C, tx.stop
	}
	for err == nil {
		if r := s.pending; r != nil && tx == nil {
			s.pending = nil
			err = s.handleReport(r)
			continue
		}
		var rxTimeout <-chan time.Time
		if s.rx != nil {
			rxTimeout = s.rxTimer.C
		}
		select {
		case <-s.ctx.Done():
			return nil, s.ctx.Err()
		case rerr := <-s.readErr:
			if s.ctx.Err() != nil {
				return nil, s.ctx.Err()
			}
			return nil, fmt.Errorf("hid: read report: %w", rerr)
		case <-stop:
			return nil, nil
		case r := <-s.reports:
			if tx != nil && tx.done.Load() {
				return r, nil
			}
			err = s.handleReport(r)
		case <-rxTimeout:
			cid := s.rx.cid
			s.log.Debug("ctaphid: message timed out", "cid", cid)
			s.dropRx()
			err = s.sendError(cid, ErrMsgTimeout)
		case <-keepalive:
			status := StatusProcessing
			if tx.state.upNeeded.Load() {
				status = StatusUPNeeded
			}
			s.wmu.Lock()
			if !tx.finished && !tx.aborted {
				err = s.sendLocked(tx.cid, CmdKeepalive, []byte{status})
			}
			s.wmu.Unlock()
		}
	}
	if s.ctx.Err() != nil {
		return nil, s.ctx.Err()
	}
	return nil, err
}

// stopTimers releases the session's timers.
func (s *session) stopTimers() {
	if s.rxTimer != nil {
		s.rxTimer.Stop()
	}
	if s.keepalive != nil {
		s.keepalive.Stop()
	}
}

// handleReport processes one report from the host (CTAP 2.1 section 11.2.4).
func (s *session) handleReport(r []byte) error {
	pkt, ok := parsePacket(r)
	if !ok {
		s.log.Debug("ctaphid: short report ignored", "len", len(r))
		return nil
	}
	if !pkt.init {
		return s.handleCont(pkt)
	}
	cid, cmd := pkt.cid, pkt.cmd
	switch {
	case cmd == CmdInit:
		return s.handleInit(pkt)
	case cmd == CmdCancel:
		s.handleCancel(cid)
		return nil
	case !s.d.allocated(cid):
		return s.sendError(cid, ErrInvalidChannel)
	case s.lockedOut(cid):
		return s.sendError(cid, ErrLockRequired)
	case s.rx != nil && s.rx.cid == cid:
		// A new request before the last one was complete: the sequence is
		// broken (CTAP 2.1 section 11.2.4); abort the request.
		s.dropRx()
		return s.sendError(cid, ErrInvalidSeq)
	case s.rx != nil || s.tx != nil:
		// One transaction at a time (CTAP 2.1 section 11.2.4, "Concurrency
		// and channels"): another channel, or this one, is mid-transaction.
		return s.sendError(cid, ErrChannelBusy)
	}
	if e := s.validate(cmd, pkt.bcnt); e != 0 {
		return s.sendError(cid, e)
	}
	n := min(pkt.bcnt, initPayload)
	buf := make([]byte, n, pkt.bcnt)
	copy(buf, pkt.data[:n])
	if n == pkt.bcnt {
		return s.dispatch(cid, cmd, buf)
	}
	s.rx = &reassembly{cid: cid, cmd: cmd, want: pkt.bcnt, buf: buf}
	s.armRxTimer()
	return nil
}

// validate checks a request's command and length from its initialization
// packet, so that a bad request fails before its continuation packets
// arrive (they are then ignored as spurious).
func (s *session) validate(cmd byte, bcnt int) Error {
	caps := s.d.cfg.Capabilities
	if bcnt > s.d.cfg.MaxMsgSize {
		return ErrInvalidLen
	}
	switch cmd {
	case CmdPing:
		return 0
	case CmdMsg:
		if caps&CapabilityNMSG != 0 {
			return ErrInvalidCmd
		}
	case CmdCBOR:
		if caps&CapabilityCBOR == 0 {
			return ErrInvalidCmd
		}
	case CmdWink:
		if caps&CapabilityWink == 0 {
			return ErrInvalidCmd
		}
		if bcnt != 0 {
			return ErrInvalidLen
		}
		return 0
	case CmdLock:
		if bcnt != 1 {
			return ErrInvalidLen
		}
		return 0
	default:
		// Includes KEEPALIVE and ERROR, which only a device sends.
		return ErrInvalidCmd
	}
	if bcnt == 0 { // MSG and CBOR need at least a byte
		return ErrInvalidLen
	}
	return 0
}

// handleCont processes a continuation packet.
func (s *session) handleCont(pkt packet) error {
	if s.rx == nil || s.rx.cid != pkt.cid {
		// "Spurious continuation packets appearing without a prior
		// initialization packet will be ignored" (CTAP 2.1 section
		// 11.2.4); so are those of another channel than the one being
		// reassembled.
		return nil
	}
	rx := s.rx
	if pkt.seq != rx.seq {
		s.dropRx()
		return s.sendError(pkt.cid, ErrInvalidSeq)
	}
	rx.seq++
	n := min(rx.want-len(rx.buf), contPayload)
	rx.buf = append(rx.buf, pkt.data[:n]...)
	if len(rx.buf) < rx.want {
		s.armRxTimer()
		return nil
	}
	s.dropRx()
	return s.dispatch(rx.cid, rx.cmd, rx.buf)
}

// handleInit serves CTAPHID_INIT (CTAP 2.1 section 11.2.9.1.3): on the
// broadcast channel it allocates a channel; on an allocated channel it
// resynchronizes it, aborting its transaction.
func (s *session) handleInit(pkt packet) error {
	cid := pkt.cid
	switch {
	case cid == 0:
		return s.sendError(cid, ErrInvalidChannel)
	case pkt.bcnt != 8:
		return s.sendError(cid, ErrInvalidLen)
	case cid != BroadcastCID && !s.d.allocated(cid):
		return s.sendError(cid, ErrInvalidChannel)
	case cid != BroadcastCID && s.lockedOut(cid):
		return s.sendError(cid, ErrLockRequired)
	}
	newCID := cid
	if cid == BroadcastCID {
		newCID = s.d.allocateCID()
		s.log.Debug("ctaphid: channel allocated", "cid", newCID)
	} else {
		s.log.Debug("ctaphid: channel resynchronized", "cid", cid)
		if s.rx != nil && s.rx.cid == cid {
			s.dropRx()
		}
		if s.tx != nil && s.tx.cid == cid {
			s.wmu.Lock()
			s.tx.aborted = true
			s.wmu.Unlock()
			s.tx.cancel()
		}
		if s.lockCID == cid {
			s.lockCID = 0
		}
	}
	resp := make([]byte, 17)
	copy(resp[0:8], pkt.data[:8])
	binary.BigEndian.PutUint32(resp[8:12], newCID)
	resp[12] = ProtocolVersion
	resp[13] = s.d.cfg.VersionMajor
	resp[14] = s.d.cfg.VersionMinor
	resp[15] = s.d.cfg.VersionBuild
	resp[16] = s.d.cfg.Capabilities
	return s.send(cid, CmdInit, resp)
}

// handleCancel serves CTAPHID_CANCEL (CTAP 2.1 section 11.2.9.1.5): it
// cancels the channel's running request, which then answers
// CTAP2_ERR_KEEPALIVE_CANCEL, or discards its partial request. The device
// never answers the cancel itself.
func (s *session) handleCancel(cid uint32) {
	if s.tx != nil && s.tx.cid == cid {
		s.log.Debug("ctaphid: cancel", "cid", cid)
		s.tx.cancel()
	}
	if s.rx != nil && s.rx.cid == cid {
		s.dropRx()
	}
}

// dispatch serves a complete request.
func (s *session) dispatch(cid uint32, cmd byte, msg []byte) error {
	switch cmd {
	case CmdPing:
		return s.send(cid, CmdPing, msg)
	case CmdWink:
		if s.d.cfg.Wink != nil {
			s.d.cfg.Wink()
		}
		return s.send(cid, CmdWink, nil)
	case CmdLock:
		// CTAP 2.1 section 11.2.9.2.2: 0 releases, 1..10 seconds locks.
		secs := msg[0]
		if secs > 10 {
			return s.sendError(cid, ErrInvalidPar)
		}
		if secs == 0 {
			s.lockCID = 0
		} else {
			s.lockCID = cid
			s.lockUntil = time.Now().Add(time.Duration(secs) * time.Second)
		}
		return s.send(cid, CmdLock, nil)
	case CmdCBOR, CmdMsg:
		return s.runTx(cid, cmd, msg)
	}
	return s.sendError(cid, ErrInvalidCmd) // unreachable: validate ran
}

// lockedOut reports whether another channel than cid holds a live lock.
func (s *session) lockedOut(cid uint32) bool {
	if s.lockCID == 0 {
		return false
	}
	if !time.Now().Before(s.lockUntil) {
		s.lockCID = 0
		return false
	}
	return s.lockCID != cid
}

// runTx runs the handler for a CBOR or MSG request on the Serve goroutine,
// while a busy loop serves the port (see session), and sends its reply.
func (s *session) runTx(cid uint32, cmd byte, msg []byte) error {
	select {
	case s.d.busy <- struct{}{}:
	default: // another port's transaction is running
		return s.sendError(cid, ErrChannelBusy)
	}
	defer func() { <-s.d.busy }()

	state := &txState{}
	ctx, cancel := context.WithCancel(context.WithValue(s.ctx, txKey{}, state))
	defer cancel()
	tx := &transaction{cid: cid, state: state, cancel: cancel, stop: make(chan struct{})}
	s.tx = tx
	if s.keepalive == nil {
		s.keepalive = time.NewTicker(s.d.cfg.KeepaliveInterval)
	} else {
		s.keepalive.Reset(s.d.cfg.KeepaliveInterval)
	}
	s.log.Debug("ctaphid: request", "cid", cid, "cmd", cmd, "len", len(msg))

	type busyResult struct {
		pending []byte
		err     error
	}
	busy := make(chan busyResult, 1)
	// The busy loop starts only if the handler still runs after
	// busyDelay: most requests are done sooner and then cost no extra
	// goroutine. A CANCEL or another host's packet waits at most that
	// long.
	busyStart := time.AfterFunc(busyDelay, func() { // owns the session until it returns
		pending, err := s.loop(tx)
		if err != nil {
			tx.cancel() // the handler must not outlive Serve
		}
		busy <- busyResult{pending, err}
	})

	resp, ok := s.callHandler(ctx, cmd, msg)

	s.wmu.Lock()
	// Finished before the reply goes out: the host may send its next
	// request as soon as it has the reply, and the busy loop must hand
	// that request back rather than answer ERR_CHANNEL_BUSY.
	tx.finished = true
	tx.done.Store(true)
	var err error
	if !tx.aborted {
		if !ok || len(resp) > MaxFramedSize {
			err = s.sendLocked(cid, CmdError, []byte{byte(ErrOther)})
		} else {
			err = s.sendLocked(cid, cmd, resp)
		}
	}
	s.wmu.Unlock()
	var res busyResult
	if !busyStart.Stop() { // the busy loop runs
		close(tx.stop)
		res = <-busy // the session is ours again
	}

	s.keepalive.Stop()
	s.tx = nil
	s.pending = res.pending
	if res.err != nil {
		return res.err
	}
	return err
}

// callHandler calls the handler; ok is false if it panicked (the host then
// gets ERR_OTHER rather than the process dying).
func (s *session) callHandler(ctx context.Context, cmd byte, msg []byte) (resp []byte, ok bool) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("ctaphid: handler panicked", "cmd", cmd, "panic", r)
			resp, ok = nil, false
		}
	}()
	if cmd == CmdCBOR {
		return s.d.h.HandleCBOR(ctx, msg), true
	}
	return s.d.h.HandleMSG(ctx, msg), true
}

// armRxTimer (re)starts the timeout of the request being reassembled.
func (s *session) armRxTimer() {
	if s.rxTimer == nil {
		s.rxTimer = time.NewTimer(s.d.cfg.MsgTimeout)
		return
	}
	s.rxTimer.Reset(s.d.cfg.MsgTimeout)
}

// dropRx forgets the request being reassembled.
func (s *session) dropRx() {
	s.rx = nil
	if s.rxTimer != nil {
		s.rxTimer.Stop()
	}
}

// send writes a message to the host.
func (s *session) send(cid uint32, cmd byte, msg []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.sendLocked(cid, cmd, msg)
}

// sendLocked is send with s.wmu held.
func (s *session) sendLocked(cid uint32, cmd byte, msg []byte) error {
	err := fragment(cid, cmd, msg, s.p.WriteReport)
	if err != nil {
		return fmt.Errorf("hid: write report: %w", err)
	}
	return nil
}

// sendError answers with CTAPHID_ERROR.
func (s *session) sendError(cid uint32, e Error) error {
	s.log.Debug("ctaphid: error", "cid", cid, "code", byte(e))
	return s.send(cid, CmdError, []byte{byte(e)})
}
