package hid

import (
	"fmt"
	"net"
	"sync"
)

// UDPPort is the device side of the UDP transport, the convention of FIDO
// firmware simulators: one 64-byte report per datagram, replies going to
// the sender of the last datagram.
type UDPPort struct {
	conn *net.UDPConn

	mu   sync.Mutex
	peer *net.UDPAddr // sender of the last datagram
}

// ListenUDP listens for reports on addr ("HOST:PORT"; callers default it to
// 127.0.0.1:8111).
func ListenUDP(addr string) (*UDPPort, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("hid: udp address %q: %w", addr, err)
	}
	conn, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, fmt.Errorf("hid: listen on udp %s: %w", addr, err)
	}
	return &UDPPort{conn: conn}, nil
}

// Addr is the address the port listens on.
func (p *UDPPort) Addr() net.Addr { return p.conn.LocalAddr() }

// ReadReport implements Port: it returns the next datagram's first 64
// bytes and remembers its sender.
func (p *UDPPort) ReadReport() ([]byte, error) {
	buf := make([]byte, ReportSize)
	n, from, err := p.conn.ReadFromUDP(buf)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.peer = from
	p.mu.Unlock()
	return buf[:n], nil
}

// WriteReport implements Port: it sends report to the sender of the last
// datagram, and drops it when no host has spoken yet.
func (p *UDPPort) WriteReport(report []byte) error {
	p.mu.Lock()
	peer := p.peer
	p.mu.Unlock()
	if peer == nil {
		return nil
	}
	var buf [ReportSize]byte
	copy(buf[:], report)
	if _, err := p.conn.WriteToUDP(buf[:], peer); err != nil {
		return fmt.Errorf("hid: udp write to %s: %w", peer, err)
	}
	return nil
}

// Close implements Port.
func (p *UDPPort) Close() error { return p.conn.Close() }
