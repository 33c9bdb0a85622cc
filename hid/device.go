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
// Both methods run on their own goroutine, one at a time per [Device]. ctx is
// cancelled when the host sends CTAPHID_CANCEL on the channel, resynchronizes
// the channel with CTAPHID_INIT, or the device stops: a handler waiting for
// user presence must then return promptly.
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
	// ReadReport blocks for the next 64-byte output report from the host.
	// It returns an error after Close.
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
func (d *Device) Serve(ctx context.Context, p Port) error {
	ctx, cancel := context.WithCancel(ctx)
	// Closing the port is what unblocks a ReadReport or WriteReport; the
	// cancel below makes sure it happens once the loop is over.
	closed := make(chan struct{})
	context.AfterFunc(ctx, func() {
		_ = p.Close()
		close(closed)
	})

	reports := make(chan []byte)
	readErr := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Go(func() { readLoop(ctx, p, reports, readErr) })

	s := &session{d: d, p: p, ctx: ctx, log: d.log}
	err := s.loop(reports, readErr)

	s.stop()
	cancel()
	<-closed
	wg.Wait()
	return err
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
// request, at most one running transaction and the channel lock. Only the
// Serve goroutine touches it.
type session struct {
	d   *Device
	p   Port
	ctx context.Context
	log *slog.Logger

	rx      *reassembly // request being reassembled, or nil
	rxTimer *time.Timer // MsgTimeout since the last packet of rx

	tx        *transaction // running handler, or nil
	keepalive *time.Ticker // while tx runs

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

// transaction is a handler running on its own goroutine.
type transaction struct {
	cid     uint32
	cmd     byte
	state   *txState
	cancel  context.CancelFunc
	aborted bool          // INIT resynchronized the channel: drop the reply
	done    chan txResult // buffered: the handler goroutine never blocks
}

// txResult is what a handler produced; panicked marks a handler that
// panicked (the host gets ERR_OTHER).
type txResult struct {
	resp     []byte
	panicked bool
}

// loop is the engine's state machine. It returns when ctx is done, the port
// fails to read, or a write fails.
func (s *session) loop(reports <-chan []byte, readErr <-chan error) error {
	for {
		var rxTimeout, keepalive <-chan time.Time
		var txDone <-chan txResult
		if s.rx != nil {
			rxTimeout = s.rxTimer.C
		}
		if s.tx != nil {
			keepalive, txDone = s.keepalive.C, s.tx.done
		}
		var err error
		select {
		case <-s.ctx.Done():
			return s.ctx.Err()
		case rerr := <-readErr:
			if s.ctx.Err() != nil {
				return s.ctx.Err()
			}
			return fmt.Errorf("hid: read report: %w", rerr)
		case r := <-reports:
			err = s.handleReport(r)
		case <-rxTimeout:
			cid := s.rx.cid
			s.log.Debug("ctaphid: message timed out", "cid", cid)
			s.dropRx()
			err = s.sendError(cid, ErrMsgTimeout)
		case <-keepalive:
			status := StatusProcessing
			if s.tx.state.upNeeded.Load() {
				status = StatusUPNeeded
			}
			if !s.tx.aborted {
				err = s.send(s.tx.cid, CmdKeepalive, []byte{status})
			}
		case res := <-txDone:
			err = s.finishTx(res)
		}
		if err != nil {
			if s.ctx.Err() != nil {
				return s.ctx.Err()
			}
			return err
		}
	}
}

// stop ends the running transaction, if any, and waits for its handler.
func (s *session) stop() {
	if s.rxTimer != nil {
		s.rxTimer.Stop()
	}
	if s.tx != nil {
		s.tx.cancel()
		<-s.tx.done
		s.endTx()
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
		if s.tx != nil && s.tx.cid == cid && !s.tx.aborted {
			s.tx.aborted = true
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
		return s.startTx(cid, cmd, msg)
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

// startTx runs the handler for a CBOR or MSG request on its own goroutine.
func (s *session) startTx(cid uint32, cmd byte, msg []byte) error {
	select {
	case s.d.busy <- struct{}{}:
	default: // another port's transaction is running
		return s.sendError(cid, ErrChannelBusy)
	}
	state := &txState{}
	ctx, cancel := context.WithCancel(context.WithValue(s.ctx, txKey{}, state))
	tx := &transaction{cid: cid, cmd: cmd, state: state, cancel: cancel, done: make(chan txResult, 1)}
	s.tx = tx
	s.keepalive = time.NewTicker(s.d.cfg.KeepaliveInterval)
	s.log.Debug("ctaphid: request", "cid", cid, "cmd", cmd, "len", len(msg))
	h := s.d.h
	go func() {
		defer func() {
			if r := recover(); r != nil {
				s.log.Error("ctaphid: handler panicked", "cmd", cmd, "panic", r)
				tx.done <- txResult{panicked: true}
			}
		}()
		var resp []byte
		if cmd == CmdCBOR {
			resp = h.HandleCBOR(ctx, msg)
		} else {
			resp = h.HandleMSG(ctx, msg)
		}
		tx.done <- txResult{resp: resp}
	}()
	return nil
}

// finishTx sends the handler's reply, unless the channel was
// resynchronized meanwhile.
func (s *session) finishTx(res txResult) error {
	tx := s.tx
	s.endTx()
	if tx.aborted {
		return nil
	}
	if res.panicked || len(res.resp) > MaxFramedSize {
		return s.sendError(tx.cid, ErrOther)
	}
	return s.send(tx.cid, tx.cmd, res.resp)
}

// endTx releases what startTx took.
func (s *session) endTx() {
	s.tx.cancel()
	s.keepalive.Stop()
	s.tx, s.keepalive = nil, nil
	<-s.d.busy
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
