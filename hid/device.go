package hid

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
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

// busyDelay is how long a handler runs on a port's reading goroutine
// before another goroutine takes over the reading (see session.readLoop).
const busyDelay = 2 * time.Millisecond

// txKey is the context key of the running transaction's state.
type txKey struct{}

// UserPresenceNeeded tells the device serving the handler whose context is
// ctx that the command now waits for user presence: the keepalives switch
// from STATUS_PROCESSING to STATUS_UPNEEDED (CTAP 2.1 section 11.2.9.2.1).
// It does nothing for a context that does not come from a Device.
func UserPresenceNeeded(ctx context.Context) {
	if t, ok := ctx.Value(txKey{}).(*transaction); ok {
		t.upNeeded.Store(true)
	}
}

// Channel returns the CTAPHID channel of the request whose handler context
// is ctx; ok is false for a context that does not come from a Device.
func Channel(ctx context.Context) (cid uint32, ok bool) {
	if t, ok := ctx.Value(txKey{}).(*transaction); ok {
		return t.cid, true
	}
	return 0, false
}

// ChannelCanceler may be implemented by a [Handler] that keeps state for a
// channel between its requests (U2F's touch, asked for while the host
// polls): the engine calls CancelChannel when the host sends
// CTAPHID_CANCEL on the channel or resynchronizes it with CTAPHID_INIT
// (CTAP 2.1 sections 11.2.9.1.3 and 11.2.9.1.5), whether or not a request
// of it is running. It must not block.
type ChannelCanceler interface {
	CancelChannel(cid uint32)
}

// cancelChannel tells the handler that channel cid was cancelled.
func (d *Device) cancelChannel(cid uint32) {
	if c, ok := d.h.(ChannelCanceler); ok {
		c.CancelChannel(cid)
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
//
// When p is the device end of a [Pipe], a [Client] on the host end has its
// requests served on its own goroutine (see Pipe); raw reports written to
// the host end are served like those of any port.
func (d *Device) Serve(ctx context.Context, p Port) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s := &session{d: d, p: p, txParent: context.WithoutCancel(ctx), log: d.log, failed: make(chan error, 1)}
	if pe, ok := p.(*pipeEnd); ok {
		pe.link.attach(s)
		defer pe.link.detach(s)
	}
	s.readers.Go(s.readLoop)

	var err error
	select {
	case <-ctx.Done():
	case err = <-s.failed:
	}
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	// Closing the port unblocks a ReadReport or a WriteReport (a host that
	// does not read); closing the session cancels a running handler and
	// stops the timers.
	cancel()
	_ = p.Close()
	s.close()
	s.readers.Wait()
	s.inline.Wait()
	return err
}

// session is the state of one Serve call: the reassembly of at most one
// request, the running transaction and the channel lock.
//
// It is driven by events, each handled under mu by the goroutine that has
// it: a report read from the port (readLoop), a report a pipe's host hands
// over on its own goroutine (deliverInline), the message timeout and the
// keepalive timers, and the end of a handler. A handler runs without mu, on
// the goroutine that delivered the request's last packet; while it runs,
// the other events go on being handled.
type session struct {
	d   *Device
	p   Port
	log *slog.Logger
	// txParent is Serve's ctx without its cancellation: what handlers'
	// contexts derive from. close cancels the running handler itself, so
	// a transaction costs no registration with Serve's ctx.
	txParent context.Context

	readers sync.WaitGroup // readLoop goroutines, and the handlers they run
	inline  sync.WaitGroup // handlers running on a pipe host's goroutine
	failed  chan error     // the first error that ends Serve

	mu     sync.Mutex // guards what follows, and whole messages on the port
	closed bool       // Serve is ending: no new work

	rx         *reassembly // request being reassembled, or nil
	rxTimer    *time.Timer // fires at rxDeadline, or earlier (see rxExpired)
	rxTimerOn  bool        // rxTimer is set to fire
	rxDeadline time.Time   // when rx times out
	rxMoved    bool        // a packet of rx came: its deadline moves

	tx       *transaction // the running (or dispatched) handler, or nil
	started  *transaction // a transaction the event being handled started
	inlineTx bool         // the event comes from deliverInline

	lockCID   uint32 // channel holding CTAPHID_LOCK, or 0
	lockUntil time.Time

	// owned are the channels this session allocated, the last maxOwned:
	// only those are cancelled in the handler (ChannelCanceler), so a
	// host on another port (another UDP peer) cannot withdraw a touch
	// asked for on a channel it did not get.
	owned     map[uint32]struct{}
	ownedList []uint32
}

// maxOwned bounds the channels a session remembers allocating.
const maxOwned = 64

// own records that the session allocated cid.
func (s *session) own(cid uint32) {
	if s.owned == nil {
		s.owned = make(map[uint32]struct{}, maxOwned)
	}
	if len(s.ownedList) == maxOwned {
		delete(s.owned, s.ownedList[0])
		s.ownedList = s.ownedList[1:]
	}
	s.owned[cid] = struct{}{}
	s.ownedList = append(s.ownedList, cid)
}

// cancelOwned tells the handler that channel cid, if this session
// allocated it, was cancelled or resynchronized.
func (s *session) cancelOwned(cid uint32) {
	if _, ok := s.owned[cid]; ok {
		s.d.cancelChannel(cid)
	}
}

// reassembly is a request whose continuation packets are still expected.
type reassembly struct {
	cid  uint32
	cmd  byte
	want int
	buf  []byte
	seq  byte // next expected sequence number
}

// transaction is a CBOR or MSG request handed to the handler.
type transaction struct {
	cid    uint32
	cmd    byte
	msg    []byte
	ctx    context.Context
	cancel context.CancelFunc
	// keepalive sends CTAPHID_KEEPALIVE while the handler runs; nil for a
	// pipe host's request, which reads nothing before the handler returns.
	keepalive *time.Timer
	// aborted by an INIT resynchronization: no reply at all.
	aborted bool
	// upNeeded is set by UserPresenceNeeded, from the handler.
	upNeeded atomic.Bool
}

// fail ends Serve with err, unless an earlier error already does.
func (s *session) fail(err error) {
	select {
	case s.failed <- err:
	default:
	}
}

// close stops the session: no event is handled after it, and a running
// handler is cancelled.
func (s *session) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.dropRx()
	if s.tx != nil {
		s.tx.cancel()
		if s.tx.keepalive != nil {
			s.tx.keepalive.Stop()
		}
	}
}

// readLoop feeds the session with the port's reports until the port fails.
// When a report completes a request, it runs the handler itself; if the
// handler is still running after busyDelay, a new readLoop goroutine takes
// over the reading (CANCEL, other channels) and this one ends with the
// handler. Most requests are done sooner and cost no extra goroutine.
func (s *session) readLoop() {
	for {
		r, err := s.p.ReadReport()
		if err != nil {
			s.fail(fmt.Errorf("hid: read report: %w", err))
			return
		}
		tx, err := s.deliver(r)
		if err != nil {
			if tx != nil {
				s.run(tx) // started: it must end
			}
			s.fail(err)
			return
		}
		if tx == nil {
			continue
		}
		// The relay counts in s.readers from now, so that Serve's Wait
		// cannot miss it, whenever it starts.
		s.readers.Add(1)
		relay := time.AfterFunc(busyDelay, func() {
			defer s.readers.Done()
			s.readLoop()
		})
		s.run(tx)
		if !relay.Stop() {
			return // the relay reads now
		}
		s.readers.Done() // the relay will not run
	}
}

// deliver handles a report from the port; it returns the transaction the
// report dispatched, for the caller to run.
func (s *session) deliver(r []byte) (*transaction, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, nil
	}
	err := s.handleReport(r)
	s.endEvent()
	tx := s.started
	s.started = nil
	return tx, err
}

// deliverInline handles reports a pipe's host hands over on its own
// goroutine. It returns the transaction they dispatched, which the caller
// must run with runInline, also on its own goroutine (the device is busy
// until then). Such a transaction sends no keepalives.
func (s *session) deliverInline(reports [][]byte) (*transaction, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, net.ErrClosed
	}
	s.inlineTx = true
	defer func() { s.inlineTx = false }()
	var err error
	for _, r := range reports {
		if err = s.handleReport(r); err != nil {
			s.fail(err)
			break
		}
	}
	s.endEvent()
	tx := s.started
	s.started = nil
	if tx != nil {
		s.inline.Add(1) // under mu and before closed: Serve's Wait sees it
	}
	return tx, err
}

// runInline runs a transaction from deliverInline.
func (s *session) runInline(tx *transaction) {
	defer s.inline.Done()
	s.run(tx)
}

// run calls the handler of tx and sends its reply.
func (s *session) run(tx *transaction) {
	resp, ok := s.callHandler(tx)

	s.mu.Lock()
	defer s.mu.Unlock()
	if tx.keepalive != nil {
		tx.keepalive.Stop()
	}
	tx.cancel()
	// The transaction ends as its reply goes out, under mu: the host may
	// send its next request as soon as it has the reply, and that request
	// must not meet ERR_CHANNEL_BUSY from this one.
	s.tx = nil
	<-s.d.busy
	if tx.aborted || s.closed {
		return
	}
	var err error
	if !ok || len(resp) > MaxFramedSize {
		err = s.send(tx.cid, CmdError, []byte{byte(ErrOther)})
	} else {
		err = s.send(tx.cid, tx.cmd, resp)
	}
	if err != nil {
		s.fail(err)
	}
}

// sendKeepalive is the keepalive timer of tx (CTAP 2.1 section 11.2.9.2.1).
func (s *session) sendKeepalive(tx *transaction) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tx != tx || tx.aborted || s.closed {
		return
	}
	status := StatusProcessing
	if tx.upNeeded.Load() {
		status = StatusUPNeeded
	}
	if err := s.send(tx.cid, CmdKeepalive, []byte{status}); err != nil {
		s.fail(err)
		return
	}
	tx.keepalive.Reset(s.d.cfg.KeepaliveInterval)
}

// rxExpired is the message timer: an incomplete request whose next packet
// did not come within MsgTimeout fails with ERR_MSG_TIMEOUT.
func (s *session) rxExpired() {
	s.mu.Lock()
	defer s.mu.Unlock()
	// The timer is not reset at every packet: the deadline may have moved
	// on since it was set. It may also have been stopped or set again
	// while this call waited for mu.
	s.rxTimerOn = false
	if s.closed || s.rx == nil {
		return
	}
	if left := time.Until(s.rxDeadline); left > 0 {
		s.rxTimer.Reset(left)
		s.rxTimerOn = true
		return
	}
	cid := s.rx.cid
	s.log.Debug("ctaphid: message timed out", "cid", cid)
	s.dropRx()
	if err := s.sendError(cid, ErrMsgTimeout); err != nil {
		s.fail(err)
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
		s.own(newCID)
		s.log.Debug("ctaphid: channel allocated", "cid", newCID)
	} else {
		s.log.Debug("ctaphid: channel resynchronized", "cid", cid)
		if s.rx != nil && s.rx.cid == cid {
			s.dropRx()
		}
		if s.tx != nil && s.tx.cid == cid {
			s.tx.aborted = true
			s.tx.cancel()
		}
		if s.lockCID == cid {
			s.lockCID = 0
		}
		s.cancelOwned(cid)
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
	s.cancelOwned(cid)
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

// startTx dispatches a CBOR or MSG request to the handler: the goroutine
// handling the event runs it (see deliver and deliverInline).
func (s *session) startTx(cid uint32, cmd byte, msg []byte) error {
	select {
	case s.d.busy <- struct{}{}:
	default: // another port's transaction is running
		return s.sendError(cid, ErrChannelBusy)
	}
	tx := &transaction{cid: cid, cmd: cmd, msg: msg}
	tx.ctx, tx.cancel = context.WithCancel(context.WithValue(s.txParent, txKey{}, tx))
	if !s.inlineTx {
		tx.keepalive = time.AfterFunc(s.d.cfg.KeepaliveInterval, func() { s.sendKeepalive(tx) })
	}
	s.log.Debug("ctaphid: request", "cid", cid, "cmd", cmd, "len", len(msg))
	s.tx, s.started = tx, tx
	return nil
}

// callHandler calls the handler; ok is false if it panicked (the host then
// gets ERR_OTHER rather than the process dying).
func (s *session) callHandler(tx *transaction) (resp []byte, ok bool) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("ctaphid: handler panicked", "cmd", tx.cmd, "panic", r)
			resp, ok = nil, false
		}
	}()
	if tx.cmd == CmdCBOR {
		return s.d.h.HandleCBOR(tx.ctx, tx.msg), true
	}
	return s.d.h.HandleMSG(tx.ctx, tx.msg), true
}

// armRxTimer restarts the timeout of the request being reassembled, once
// the event being handled is over (see endEvent): a whole message handed
// over at once then costs no timer at all.
func (s *session) armRxTimer() {
	s.rxMoved = true
}

// endEvent finishes handling an event, with s.mu held: it moves the
// deadline of the request being reassembled if a packet of it came, and
// makes sure the timer will look at it.
func (s *session) endEvent() {
	if s.rx == nil || !s.rxMoved {
		return
	}
	s.rxMoved = false
	s.rxDeadline = time.Now().Add(s.d.cfg.MsgTimeout)
	switch {
	case s.rxTimer == nil:
		s.rxTimer = time.AfterFunc(s.d.cfg.MsgTimeout, s.rxExpired)
	case !s.rxTimerOn:
		s.rxTimer.Reset(s.d.cfg.MsgTimeout)
	}
	s.rxTimerOn = true
}

// dropRx forgets the request being reassembled.
func (s *session) dropRx() {
	s.rx = nil
	s.rxMoved = false
	if s.rxTimerOn {
		s.rxTimer.Stop()
		s.rxTimerOn = false
	}
}

// send writes a message to the host, with s.mu held.
func (s *session) send(cid uint32, cmd byte, msg []byte) error {
	if pe, ok := s.p.(*pipeEnd); ok {
		if err := pe.writeMessage(cid, cmd, msg); err != nil {
			return fmt.Errorf("hid: write report: %w", err)
		}
		return nil
	}
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
