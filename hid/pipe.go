package hid

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// pipeBuffer is how many reports each direction of a Pipe holds before
// WriteReport blocks, like the report queues of a real HID device.
const pipeBuffer = 64

// Pipe returns the two ends of an in-process report transport: host for a
// [Client], device for [Device.Serve]. Closing an end makes its own calls
// fail with net.ErrClosed, and the peer's writes fail and its reads, once
// the reports already sent are drained, return io.EOF.
func Pipe() (host, device Port) {
	toDevice, toHost := make(chan []byte, pipeBuffer), make(chan []byte, pipeBuffer)
	h := &pipeEnd{in: toHost, out: toDevice, self: newCloser()}
	d := &pipeEnd{in: toDevice, out: toHost, self: newCloser()}
	h.peer, d.peer = d.self, h.self
	return h, d
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

// pipeEnd is one end of a Pipe.
type pipeEnd struct {
	in, out    chan []byte
	self, peer *closer
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
	select {
	case r := <-e.in: // a report at hand wins over a done ctx
		return r, nil
	default:
	}
	select {
	case r := <-e.in:
		return r, nil
	case <-e.self.c:
		return nil, net.ErrClosed
	case <-e.peer.c: // the peer closed: drain what it sent
		select {
		case r := <-e.in:
			return r, nil
		default:
			return nil, io.EOF
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// WriteReport implements Port. It sends a copy of report, padded or cut to
// 64 bytes.
func (e *pipeEnd) WriteReport(report []byte) error {
	switch {
	case e.self.closed.Load():
		return net.ErrClosed
	case e.peer.closed.Load():
		return io.ErrClosedPipe
	}
	r := make([]byte, ReportSize)
	copy(r, report)
	select {
	case e.out <- r:
		return nil
	default:
	}
	select {
	case e.out <- r:
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

// inbox implements chanPort.
func (e *pipeEnd) inbox() <-chan []byte { return e.in }

// waitClosed implements chanPort.
func (e *pipeEnd) waitClosed(ctx context.Context) error {
	select {
	case <-e.self.c:
		return net.ErrClosed
	case <-e.peer.c:
		return io.EOF
	case <-ctx.Done():
		return nil
	}
}
