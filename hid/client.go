package hid

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// cancelGrace bounds how long a Client waits for the device's answer to a
// cancelled request (CTAP2_ERR_KEEPALIVE_CANCEL) after CTAPHID_CANCEL, so
// that the answer does not reach the next request.
const cancelGrace = time.Second

// DeviceInfo is what a device said in its CTAPHID_INIT response.
type DeviceInfo struct {
	Channel      uint32 // the channel allocated to the client
	Protocol     byte   // CTAPHID protocol version (2)
	Major        byte   // device version numbers
	Minor        byte
	Build        byte
	Capabilities byte // CapabilityWink, CapabilityCBOR, CapabilityNMSG
}

// Client is the host side of CTAPHID: it owns one channel on a device and
// runs one request at a time on it. Its methods are safe for concurrent
// use; Cancel may interrupt a running request from another goroutine. On
// the host end of a [Pipe], the device serves the client's requests on the
// calling goroutine (see Pipe).
type Client struct {
	p    Port
	r    contextReader
	info DeviceInfo
	once sync.Once

	txMu sync.Mutex // one request at a time
	wMu  sync.Mutex // whole messages only, and wbuf
	wbuf frameBuffer

	// cancels is the CTAPHID_CANCEL a request run on a pipe may send
	// when its context ends (see runRequest).
	cancels sync.WaitGroup

	// done is an ended context: reads with it take only the reports at
	// hand.
	done context.Context
}

// Dial opens a device and allocates a channel on it. addr is
// "udp:HOST:PORT" for a device listening on UDP, or the path of a hidraw
// node or a pty (the device side of OpenPTY) for anything else.
func Dial(ctx context.Context, addr string) (*Client, error) {
	var p Port
	if hostport, ok := strings.CutPrefix(addr, "udp:"); ok {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "udp", hostport)
		if err != nil {
			return nil, fmt.Errorf("hid: dial %s: %w", addr, err)
		}
		p = &udpClientPort{conn: conn}
	} else {
		f, err := os.OpenFile(addr, os.O_RDWR|syscall.O_NOCTTY, 0)
		if err != nil {
			return nil, fmt.Errorf("hid: open %s: %w", addr, err)
		}
		p = &filePort{f: f}
	}
	c, err := NewClient(ctx, p)
	if err != nil {
		_ = p.Close()
		return nil, fmt.Errorf("hid: %s: %w", addr, err)
	}
	return c, nil
}

// NewClient allocates a channel with CTAPHID_INIT on the broadcast channel
// and returns a client using it. The client owns p: Close closes it.
func NewClient(ctx context.Context, p Port) (*Client, error) {
	done, cancel := context.WithCancel(context.Background())
	cancel()
	c := &Client{p: p, done: done}
	if r, ok := p.(contextReader); ok {
		c.r = r
	} else {
		c.r = newAsyncReader(p)
	}
	info, err := c.init(ctx)
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	c.info = info
	return c, nil
}

// init allocates a channel (CTAP 2.1 section 11.2.9.1.3): it sends
// CTAPHID_INIT with a random nonce on the broadcast channel and waits for
// the answer carrying that nonce, skipping answers meant for other hosts.
func (c *Client) init(ctx context.Context) (DeviceInfo, error) {
	var nonce [8]byte
	_, _ = rand.Read(nonce[:]) // crypto/rand.Read never fails
	if err := c.write(BroadcastCID, CmdInit, nonce[:]); err != nil {
		return DeviceInfo{}, fmt.Errorf("ctaphid init: %w", err)
	}
	for {
		cmd, resp, err := c.receive(ctx, BroadcastCID)
		if err != nil {
			return DeviceInfo{}, fmt.Errorf("ctaphid init: %w", err)
		}
		if cmd == CmdError && len(resp) > 0 {
			return DeviceInfo{}, fmt.Errorf("ctaphid init: %w", Error(resp[0]))
		}
		if cmd != CmdInit || len(resp) < 17 || [8]byte(resp[:8]) != nonce {
			continue // another host's answer
		}
		return DeviceInfo{
			Channel:  binary.BigEndian.Uint32(resp[8:12]),
			Protocol: resp[12], Major: resp[13], Minor: resp[14], Build: resp[15],
			Capabilities: resp[16],
		}, nil
	}
}

// Info returns what the device said when the channel was allocated.
func (c *Client) Info() DeviceInfo { return c.info }

// Close closes the port.
func (c *Client) Close() error {
	var err error
	c.once.Do(func() {
		err = c.p.Close()
		if a, ok := c.r.(*asyncReader); ok {
			a.wait()
		}
	})
	return err
}

// CBOR sends a CTAPHID_CBOR request (command byte + CBOR) and returns the
// response (status byte + CBOR), skipping keepalives. When ctx is done
// first, it sends CTAPHID_CANCEL and returns ctx's error.
func (c *Client) CBOR(ctx context.Context, msg []byte) ([]byte, error) {
	return c.Transact(ctx, CmdCBOR, msg)
}

// MSG sends a U2F (CTAP1) request APDU with CTAPHID_MSG and returns the
// response APDU including its status word.
func (c *Client) MSG(ctx context.Context, apdu []byte) ([]byte, error) {
	return c.Transact(ctx, CmdMsg, apdu)
}

// Ping sends data with CTAPHID_PING and returns the echo.
func (c *Client) Ping(ctx context.Context, data []byte) ([]byte, error) {
	return c.Transact(ctx, CmdPing, data)
}

// Wink asks the device to identify itself (CTAPHID_WINK).
func (c *Client) Wink(ctx context.Context) error {
	_, err := c.Transact(ctx, CmdWink, nil)
	return err
}

// Lock takes the device's exclusive lock for the given number of seconds
// (at most 10); 0 releases it (CTAPHID_LOCK).
func (c *Client) Lock(ctx context.Context, seconds byte) error {
	_, err := c.Transact(ctx, CmdLock, []byte{seconds})
	return err
}

// Cancel sends CTAPHID_CANCEL on the client's channel: a running CBOR
// request then ends, typically with CTAP2_ERR_KEEPALIVE_CANCEL.
func (c *Client) Cancel() error {
	return c.write(c.info.Channel, CmdCancel, nil)
}

// Transact sends a request with command cmd and returns the payload of the
// device's response, skipping keepalives. A CTAPHID_ERROR response becomes
// an [Error].
//
// A device busy with another host's transaction answers ERR_CHANNEL_BUSY
// (CTAP 2.1 section 11.2.4: one transaction at a time); a browser waiting
// for a touch keeps it busy for as long as the touch takes. The spec says
// the client SHOULD retry after a short delay (CTAP 2.1 section 11.2.9.1.6,
// ERR_CHANNEL_BUSY): Transact sends the request again, after a pause that
// grows from busyFirst to busyMax, for up to busyFor in all or until ctx
// ends, and returns ErrChannelBusy only after that.
func (c *Client) Transact(ctx context.Context, cmd byte, data []byte) ([]byte, error) {
	return retryBusy(ctx, busyFor, func() ([]byte, error) {
		return c.transact(ctx, c.info.Channel, cmd, data)
	})
}

// The pauses between the tries of a request the device answered with
// ERR_CHANNEL_BUSY, and how long the tries may go on in all.
const (
	busyFirst = 20 * time.Millisecond
	busyMax   = 500 * time.Millisecond
	busyFor   = 30 * time.Second
)

// retryBusy calls try until it returns something other than
// ErrChannelBusy, ctx ends or limit has passed since the first try.
func retryBusy(ctx context.Context, limit time.Duration, try func() ([]byte, error)) ([]byte, error) {
	deadline := time.Now().Add(limit)
	pause := busyFirst
	for {
		resp, err := try()
		if !errors.Is(err, ErrChannelBusy) || !time.Now().Add(pause).Before(deadline) {
			return resp, err
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%w (the device was busy with another host: %w)", ctx.Err(), err)
		case <-t.C:
		}
		pause = min(2*pause, busyMax)
	}
}

func (c *Client) transact(ctx context.Context, cid uint32, cmd byte, data []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.txMu.Lock()
	defer c.txMu.Unlock()
	c.drain()
	req, err := c.send(cid, cmd, data)
	if err != nil {
		if req.tx != nil {
			req.run()
		}
		return nil, err
	}
	wait := ctx
	if req.tx != nil && c.runRequest(ctx, req) {
		// CTAP 2.1 section 11.2.9.1.5: cancelled; consume the answer.
		grace, stop := context.WithTimeout(context.Background(), cancelGrace)
		defer stop()
		wait = grace
	}
	for {
		rcmd, resp, err := c.receive(wait, cid)
		if wait != ctx { // cancelled: the answer only had to be consumed
			return nil, ctx.Err()
		}
		if err != nil {
			if ctx.Err() == nil || (cmd != CmdCBOR && cmd != CmdMsg) {
				return nil, err
			}
			// CTAP 2.1 section 11.2.9.1.5: cancel, then consume the answer.
			if err := c.write(cid, CmdCancel, nil); err != nil {
				return nil, errors.Join(ctx.Err(), err)
			}
			grace, stop := context.WithTimeout(context.Background(), cancelGrace)
			defer stop()
			wait = grace
			continue
		}
		switch rcmd {
		case cmd:
			return resp, nil
		case CmdError:
			if len(resp) < 1 {
				return nil, ErrOther
			}
			return nil, Error(resp[0])
		default:
			return nil, fmt.Errorf("ctaphid: answer 0x%02x to command 0x%02x", rcmd, cmd)
		}
	}
}

// drain discards reports left over from an earlier request.
func (c *Client) drain() {
	for {
		if _, err := c.r.ReadReportContext(c.done); err != nil {
			return
		}
	}
}

// write sends one message.
func (c *Client) write(cid uint32, cmd byte, data []byte) error {
	req, err := c.send(cid, cmd, data)
	if req.tx != nil {
		req.run()
	}
	return err
}

// send sends one message. On a Pipe whose device end is served, the
// engine handles the message on this goroutine, and the request it
// completes, if any, is returned: the caller must run it, without c.wMu.
func (c *Client) send(cid uint32, cmd byte, data []byte) (inlineRequest, error) {
	c.wMu.Lock()
	defer c.wMu.Unlock()
	if pe, ok := c.p.(*pipeEnd); ok {
		// The engine is done with the reports when deliver returns.
		reports, err := c.wbuf.frame(cid, cmd, data)
		if err != nil {
			return inlineRequest{}, fmt.Errorf("ctaphid: write: %w", err)
		}
		// A request may have started even when a later report failed:
		// the caller runs it all the same.
		req, ok, err := pe.deliver(reports)
		if err != nil {
			return req, fmt.Errorf("ctaphid: write: %w", err)
		}
		if ok {
			return req, nil
		}
	}
	if err := fragment(cid, cmd, data, c.p.WriteReport); err != nil {
		return inlineRequest{}, fmt.Errorf("ctaphid: write: %w", err)
	}
	return inlineRequest{}, nil
}

// runRequest runs a request the engine serves on this goroutine (see
// send). If ctx ends meanwhile, it sends CTAPHID_CANCEL from another
// goroutine, as a host waiting on any port would, and reports that it did:
// the answer then only has to be consumed.
func (c *Client) runRequest(ctx context.Context, req inlineRequest) (cancelled bool) {
	if ctx.Done() == nil { // a context that never ends
		req.run()
		return false
	}
	c.cancels.Add(1) // one request at a time (txMu): the group is ours
	stop := context.AfterFunc(ctx, func() {
		defer c.cancels.Done()
		_ = c.Cancel()
	})
	req.run()
	if stop() {
		c.cancels.Done()
		return false
	}
	c.cancels.Wait() // so that the CANCEL cannot reach a later request
	return true
}

// next returns the next report.
func (c *Client) next(ctx context.Context) ([]byte, error) {
	r, err := c.r.ReadReportContext(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("ctaphid: read: %w", err)
	}
	return r, nil
}

// receive reassembles the next message on cid other than a keepalive.
func (c *Client) receive(ctx context.Context, cid uint32) (byte, []byte, error) {
	for {
		r, err := c.next(ctx)
		if err != nil {
			return 0, nil, err
		}
		pkt, ok := parsePacket(r)
		if !ok || pkt.cid != cid || !pkt.init || pkt.cmd == CmdKeepalive {
			continue
		}
		msg := make([]byte, 0, pkt.bcnt)
		msg = append(msg, pkt.data[:min(pkt.bcnt, initPayload)]...)
		for seq := byte(0); len(msg) < pkt.bcnt; {
			r, err := c.next(ctx)
			if err != nil {
				return 0, nil, err
			}
			cont, ok := parsePacket(r)
			if !ok || cont.cid != cid {
				continue
			}
			if cont.init || cont.seq != seq {
				return 0, nil, fmt.Errorf("ctaphid: %w in the device's answer", ErrInvalidSeq)
			}
			seq++
			msg = append(msg, cont.data[:min(pkt.bcnt-len(msg), contPayload)]...)
		}
		return pkt.cmd, msg, nil
	}
}

// contextReader is a Port whose reads end when a context is done. When ctx
// is already done, ReadReportContext returns a report only if one is at
// hand without waiting (best effort).
type contextReader interface {
	ReadReportContext(ctx context.Context) ([]byte, error)
}

// asyncReader makes any Port a contextReader with a goroutine that reads
// ahead; the goroutine ends when the port fails or is closed.
type asyncReader struct {
	reports chan []byte
	err     error // set before reports is closed
	done    chan struct{}
}

func newAsyncReader(p Port) *asyncReader {
	a := &asyncReader{reports: make(chan []byte, 16), done: make(chan struct{})}
	go func() {
		defer close(a.done)
		defer close(a.reports)
		for {
			r, err := p.ReadReport()
			if err != nil {
				a.err = err
				return
			}
			a.reports <- r // blocks until read; Close of p ends ReadReport
		}
	}()
	return a
}

// ReadReportContext implements contextReader.
func (a *asyncReader) ReadReportContext(ctx context.Context) ([]byte, error) {
	select {
	case r, ok := <-a.reports:
		if !ok {
			return nil, a.err
		}
		return r, nil
	default:
	}
	select {
	case r, ok := <-a.reports:
		if !ok {
			return nil, a.err
		}
		return r, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// wait drains the reports until the reading goroutine ends (after the
// port is closed).
func (a *asyncReader) wait() {
	for range a.reports {
	}
	<-a.done
}

// deadliner is an *os.File or a net.Conn.
type deadliner interface {
	SetReadDeadline(t time.Time) error
}

// readContext runs read with ctx's end as its read deadline.
func readContext(ctx context.Context, d deadliner, read func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = d.SetReadDeadline(time.Now())
		close(fired)
	})
	err := read()
	if !stop() {
		<-fired
		_ = d.SetReadDeadline(time.Time{})
		if err != nil {
			return ctx.Err()
		}
	}
	return err
}

// filePort is the host side of a hidraw node or a pty: writes carry a
// leading report ID 0x00, reads are bare 64-byte reports.
type filePort struct {
	f    *os.File
	mu   sync.Mutex
	buf  [ReportSize]byte
	have int // bytes of buf read so far: a pty may split a report
}

// ReadReport implements Port.
func (p *filePort) ReadReport() ([]byte, error) {
	return p.ReadReportContext(context.Background())
}

// ReadReportContext implements contextReader. The file must support
// deadlines (hidraw nodes and ptys do); a report cut short by ctx is
// completed by the next read.
func (p *filePort) ReadReportContext(ctx context.Context) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	err := readContext(ctx, p.f, func() error {
		for p.have < ReportSize {
			n, err := p.f.Read(p.buf[p.have:])
			p.have += n
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	p.have = 0
	return bytes.Clone(p.buf[:]), nil
}

// WriteReport implements Port.
func (p *filePort) WriteReport(report []byte) error {
	var buf [ReportSize + 1]byte
	copy(buf[1:], report)
	_, err := p.f.Write(buf[:])
	return err
}

// Close implements Port.
func (p *filePort) Close() error { return p.f.Close() }

// udpClientPort is the host side of a UDP device.
type udpClientPort struct {
	conn net.Conn
}

// ReadReport implements Port.
func (p *udpClientPort) ReadReport() ([]byte, error) {
	return p.ReadReportContext(context.Background())
}

// ReadReportContext implements contextReader.
func (p *udpClientPort) ReadReportContext(ctx context.Context) ([]byte, error) {
	buf := make([]byte, ReportSize)
	var n int
	err := readContext(ctx, p.conn, func() (err error) {
		n, err = p.conn.Read(buf)
		return err
	})
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// WriteReport implements Port.
func (p *udpClientPort) WriteReport(report []byte) error {
	var buf [ReportSize]byte
	copy(buf[:], report)
	_, err := p.conn.Write(buf[:])
	return err
}

// Close implements Port.
func (p *udpClientPort) Close() error { return p.conn.Close() }
