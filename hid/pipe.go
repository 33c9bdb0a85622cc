package hid

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// pipeBuffer is how many messages (or single reports written with
// WriteReport) each direction of a Pipe holds before a write blocks, like
// the report queues of a real HID device.
const pipeBuffer = 64

// Pipe returns the two ends of an in-process report transport: host for a
// [Client], device for [Device.Serve]. Closing an end makes its own calls
// fail with net.ErrClosed, and the peer's writes fail and its reads, once
// the reports already sent are drained, return io.EOF.
//
// Reports written to the host end are read by the device's goroutines, as
// on any port. A [Client] on the host end instead hands each request's
// reports to the engine on its own goroutine, which also runs the handler
// and queues the reply: a round trip then wakes no other goroutine, which
// on some machines costs more than the framing itself. The engine is the
// same (reassembly, channels, errors, CANCEL); only keepalives are not
// sent for such a request, since the client reads nothing before the
// handler returns. A client whose context ends meanwhile sends
// CTAPHID_CANCEL from another goroutine, as it does on any port.
func Pipe() (host, device Port) {
	toDevice, toHost := make(chan [][]byte, pipeBuffer), make(chan [][]byte, pipeBuffer)
	link := &pipeLink{}
	h := &pipeEnd{in: toHost, out: toDevice, self: newCloser(), link: link}
	d := &pipeEnd{in: toDevice, out: toHost, self: newCloser(), link: link}
	h.peer, d.peer = d.self, h.self
	return h, d
}

// pipeLink is what both ends of a Pipe know of the device serving it.
type pipeLink struct {
	mu sync.Mutex
	s  *session // the Serve call on the device end, or nil
}

// attach records the session serving the device end.
func (l *pipeLink) attach(s *session) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.s = s
}

// detach forgets s once its Serve call ends.
func (l *pipeLink) detach(s *session) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.s == s {
		l.s = nil
	}
}

// session returns the session serving the device end, or nil.
func (l *pipeLink) session() *session {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s
}

// closer is a channel closed once, with a flag for cheap checks.
type closer struct {
	once   sync.Once
	closed atomic.Bool
	c      chan struct{}
}

func newCloser() *closer { return &closer{c: make(chan struct{})} }

func (c *closer) close() {
	c.once.Do(func() {
		c.closed.Store(true)
		close(c.c)
	})
}

// pipeEnd is one end of a Pipe. Its channels carry batches of reports:
// one per WriteReport, or a whole message from writeMessage.
type pipeEnd struct {
	in, out    chan [][]byte
	self, peer *closer
	link       *pipeLink

	mu      sync.Mutex
	pending [][]byte // the rest of the batch being read
}

// ReadReport implements Port.
func (e *pipeEnd) ReadReport() ([]byte, error) {
	return e.ReadReportContext(context.Background())
}

// ReadReportContext is ReadReport ending with ctx; it returns a report at
// hand even when ctx is done.
func (e *pipeEnd) ReadReportContext(ctx context.Context) ([]byte, error) {
	if e.self.closed.Load() {
		return nil, net.ErrClosed
	}
	if r := e.next(nil); r != nil {
		return r, nil
	}
	select {
	case b := <-e.in: // a report at hand wins over a done ctx
		return e.next(b), nil
	default:
	}
	select {
	case b := <-e.in:
		return e.next(b), nil
	case <-e.self.c:
		return nil, net.ErrClosed
	case <-e.peer.c: // the peer closed: drain what it sent
		select {
		case b := <-e.in:
			return e.next(b), nil
		default:
			return nil, io.EOF
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// next queues batch (which is never empty) behind the reports pending and
// returns the first one, or nil if there is none.
func (e *pipeEnd) next(batch [][]byte) []byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.pending = append(e.pending, batch...)
	if len(e.pending) == 0 {
		return nil
	}
	r := e.pending[0]
	e.pending = e.pending[1:]
	return r
}

// WriteReport implements Port. It sends a copy of report, padded or cut to
// 64 bytes.
func (e *pipeEnd) WriteReport(report []byte) error {
	r := make([]byte, ReportSize)
	copy(r, report)
	return e.writeBatch([][]byte{r})
}

// writeMessage sends a whole message at once: a single queue entry, read
// report by report. The reader owns the reports.
func (e *pipeEnd) writeMessage(cid uint32, cmd byte, msg []byte) error {
	reports, err := frames(cid, cmd, msg)
	if err != nil {
		return err
	}
	return e.writeBatch(reports)
}

// writeBatch queues a batch of reports.
func (e *pipeEnd) writeBatch(b [][]byte) error {
	switch {
	case e.self.closed.Load():
		return net.ErrClosed
	case e.peer.closed.Load():
		return io.ErrClosedPipe
	}
	select {
	case e.out <- b:
		return nil
	default:
	}
	select {
	case e.out <- b:
		return nil
	case <-e.self.c:
		return net.ErrClosed
	case <-e.peer.c:
		return io.ErrClosedPipe
	}
}

// Close implements Port.
func (e *pipeEnd) Close() error {
	e.self.close()
	return nil
}

// deliver hands reports written to the host end straight to the engine
// serving the device end, on the caller's goroutine. It returns the request
// they complete, if any, which the caller must then run (the device is
// busy until it has); ok is false when no device serves the pipe (write
// them with WriteReport then).
func (e *pipeEnd) deliver(reports [][]byte) (req inlineRequest, ok bool, err error) {
	s := e.link.session()
	switch {
	case s == nil:
		return inlineRequest{}, false, nil
	case e.self.closed.Load():
		return inlineRequest{}, true, net.ErrClosed
	case e.peer.closed.Load():
		return inlineRequest{}, true, io.ErrClosedPipe
	}
	tx, err := s.deliverInline(reports)
	return inlineRequest{s, tx}, true, err
}

// inlineRequest is a request a pipe's host runs on its own goroutine.
type inlineRequest struct {
	s  *session
	tx *transaction // nil: nothing to run
}

// run runs the request's handler and queues its reply.
func (r inlineRequest) run() { r.s.runInline(r.tx) }
