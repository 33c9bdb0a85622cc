package hid

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Listener hands out one [Port] per host, for a transport where several
// hosts share one endpoint (UDP). [Device.ServeListener] serves it.
type Listener interface {
	// Accept blocks for the next host and returns its port. It returns an
	// error after Close.
	Accept() (Port, error)
	// Close stops accepting and closes every port handed out.
	Close() error
}

// UDP transport limits.
const (
	// DefaultUDPPeers is how many UDP peers a UDPListener serves at once:
	// a new peer beyond it evicts the one quiet the longest, if it has
	// been quiet for udpQuiet, and is ignored otherwise.
	DefaultUDPPeers = 64
	// udpQuiet is how long a peer must have exchanged nothing (no
	// datagram either way: a peer waiting for a touch gets keepalives)
	// before a new peer may take its place.
	udpQuiet = 5 * time.Second
	// udpQueue is how many datagrams of one peer wait to be read before
	// more are dropped (a whole maximal message is 129).
	udpQueue = 160
)

// UDPListener is the device side of the UDP transport, the convention of
// FIDO firmware simulators: one 64-byte report per datagram. Each peer
// address is a host of its own, as each process on a USB key is: its own
// CTAPHID session (channels, reassembly, lock), and replies go only to it.
// So a peer cannot read, steal or starve another's messages; what it
// shares with the others is the device, which serves one transaction at a
// time (another peer meanwhile gets ERR_CHANNEL_BUSY, CTAP 2.1 section
// 11.2.4).
//
// A datagram from an unknown address starts a peer only if it is a CTAPHID
// initialization packet; anything else from it is ignored. Every local user
// can send to a loopback address: a UDP key is usable by all of them.
type UDPListener struct {
	conn     *net.UDPConn
	maxPeers int
	quiet    time.Duration // udpQuiet; tests shorten it (under mu)

	accept chan *udpPeer
	done   chan struct{} // closed by Close
	once   sync.Once
	reader sync.WaitGroup

	mu    sync.Mutex
	peers map[netip.AddrPort]*udpPeer
}

// ListenUDP listens for reports on addr ("HOST:PORT"; callers default it to
// 127.0.0.1:8111).
func ListenUDP(addr string) (*UDPListener, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("hid: udp address %q: %w", addr, err)
	}
	conn, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, fmt.Errorf("hid: listen on udp %s: %w", addr, err)
	}
	l := &UDPListener{conn: conn, maxPeers: DefaultUDPPeers, quiet: udpQuiet, accept: make(chan *udpPeer),
		done: make(chan struct{}), peers: map[netip.AddrPort]*udpPeer{}}
	l.reader.Go(l.readLoop)
	return l, nil
}

// Addr is the address the listener listens on.
func (l *UDPListener) Addr() net.Addr { return l.conn.LocalAddr() }

// Accept implements Listener: it returns the port of the next new peer.
func (l *UDPListener) Accept() (Port, error) {
	select {
	case p := <-l.accept:
		return p, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close implements Listener.
func (l *UDPListener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.done)
		err = l.conn.Close()
		l.reader.Wait()
		l.mu.Lock()
		peers := l.peers
		l.peers = map[netip.AddrPort]*udpPeer{}
		l.mu.Unlock()
		for _, p := range peers {
			p.close()
		}
	})
	return err
}

// readLoop hands each datagram to its peer until the socket is closed.
func (l *UDPListener) readLoop() {
	for {
		buf := make([]byte, ReportSize)
		n, from, err := l.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			select {
			case <-l.done:
				return
			default:
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			time.Sleep(10 * time.Millisecond) // e.g. ICMP errors: keep serving
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		pkt, ok := parsePacket(buf[:n])
		if !ok {
			continue // too short to be a report: learns nothing
		}
		p, isNew := l.peer(from, pkt.init)
		if p == nil {
			continue
		}
		if isNew {
			select {
			case l.accept <- p:
			case <-l.done:
				return
			}
		}
		select {
		case p.in <- buf[:n]:
		default: // the peer floods its own queue: drop, as UDP may
		}
	}
}

// peer returns the peer of addr, creating it when init says the datagram
// may start a conversation. When there are too many, the peer quiet the
// longest makes room if it has been quiet for l.quiet; otherwise the new
// one is ignored: a peer at work (waiting for a touch, say) is never
// dropped for a newcomer.
func (l *UDPListener) peer(addr netip.AddrPort, init bool) (p *udpPeer, isNew bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if p := l.peers[addr]; p != nil {
		p.seen = now
		return p, false
	}
	if !init {
		return nil, false
	}
	if len(l.peers) >= l.maxPeers {
		var oldest *udpPeer
		for _, q := range l.peers {
			if oldest == nil || q.seen.Before(oldest.seen) {
				oldest = q
			}
		}
		if now.Sub(oldest.seen) < l.quiet {
			return nil, false
		}
		delete(l.peers, oldest.addr)
		oldest.close()
	}
	p = &udpPeer{l: l, addr: addr, seen: now, in: make(chan []byte, udpQueue), done: make(chan struct{})}
	l.peers[addr] = p
	return p, true
}

// udpPeer is the Port of one UDP peer address.
type udpPeer struct {
	l    *UDPListener
	addr netip.AddrPort
	seen time.Time // last datagram either way; guarded by l.mu
	in   chan []byte
	done chan struct{}
	once sync.Once
}

// ReadReport implements Port.
func (p *udpPeer) ReadReport() ([]byte, error) {
	select {
	case r := <-p.in:
		return r, nil
	case <-p.done:
		return nil, net.ErrClosed
	}
}

// WriteReport implements Port: the report goes to this peer only.
func (p *udpPeer) WriteReport(report []byte) error {
	select {
	case <-p.done:
		return net.ErrClosed
	default:
	}
	p.l.mu.Lock()
	p.seen = time.Now()
	p.l.mu.Unlock()
	var buf [ReportSize]byte
	copy(buf[:], report)
	if _, err := p.l.conn.WriteToUDPAddrPort(buf[:], p.addr); err != nil {
		return fmt.Errorf("hid: udp write to %s: %w", p.addr, err)
	}
	return nil
}

// Close implements Port: the listener forgets the peer, whose next
// datagram starts a new session.
func (p *udpPeer) Close() error {
	p.l.mu.Lock()
	if p.l.peers[p.addr] == p {
		delete(p.l.peers, p.addr)
	}
	p.l.mu.Unlock()
	p.close()
	return nil
}

func (p *udpPeer) close() { p.once.Do(func() { close(p.done) }) }

// ServeListener serves every port l accepts, each as [Device.Serve] does,
// until ctx is done or l fails. It closes l and waits for every port's
// session before it returns ctx.Err(), or l's error.
func (d *Device) ServeListener(ctx context.Context, l Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		_ = l.Close()
		wg.Wait()
	}()
	stop := context.AfterFunc(ctx, func() { _ = l.Close() })
	defer stop()
	for {
		p, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("hid: accept: %w", err)
		}
		wg.Go(func() {
			if err := d.Serve(ctx, p); err != nil && ctx.Err() == nil {
				d.log.Debug("ctaphid: host gone", "err", err)
			}
		})
	}
}
