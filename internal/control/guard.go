package control

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Limits of the control API's connections: any local user can connect to
// a loopback port (issue 11, point 8).
const (
	// maxConnsPerPeer bounds the open connections of one user.
	maxConnsPerPeer = 64
	// refusalLinger is how long a refused connection may drain the
	// request it sent before it is closed (so that the client reads the
	// 403 rather than a reset); maxLingering bounds those connections.
	refusalLinger = 100 * time.Millisecond
	maxLingering  = 32
	// refusalLogEvery is the least time between two log lines about
	// refused connections; the lines in between are counted.
	refusalLogEvery = 10 * time.Second
)

// guardedListener identifies the peer of each connection as it is
// accepted: another user's connection, or one beyond maxConnsPerPeer, is
// answered 403 and closed at once, before the HTTP server spends anything
// on it, and logged at most once per refusalLogEvery.
type guardedListener struct {
	net.Listener
	log *slog.Logger

	linger chan struct{} // tokens of lingering refused connections

	mu         sync.Mutex
	open       map[int]int // uid -> open connections
	lastLog    time.Time
	suppressed int
}

func guard(ln net.Listener, log *slog.Logger) *guardedListener {
	return &guardedListener{Listener: ln, log: log, linger: make(chan struct{}, maxLingering), open: map[int]int{}}
}

// Accept implements net.Listener: it returns the next allowed connection.
func (l *guardedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		p := identify(c)
		if err := p.allowed(); err != nil {
			l.refuse(c, err)
			continue
		}
		l.mu.Lock()
		full := l.open[p.uid] >= maxConnsPerPeer
		if !full {
			l.open[p.uid]++
		}
		l.mu.Unlock()
		if full {
			l.refuse(c, fmt.Errorf("refused: uid %d has %d connections open already", p.uid, maxConnsPerPeer))
			continue
		}
		return &guardedConn{Conn: c, peer: p, release: func() { l.release(p.uid) }}, nil
	}
}

func (l *guardedListener) release(uid int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[uid]--; l.open[uid] <= 0 {
		delete(l.open, uid)
	}
}

// refuse answers 403 with the reason and closes c without reading a
// request: it lingers briefly (bounded) so the client can read the answer.
func (l *guardedListener) refuse(c net.Conn, reason error) {
	l.logRefusal(reason)
	body, _ := json.Marshal(apiError{Error: reason.Error()})
	_ = c.SetDeadline(time.Now().Add(refusalLinger))
	_, _ = fmt.Fprintf(c, "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
	select {
	case l.linger <- struct{}{}:
	default:
		c.Close() // too many lingering: close at once
		return
	}
	go func() {
		defer func() { <-l.linger }()
		defer c.Close()
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		buf := make([]byte, 4096)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
		}
	}()
}

// logRefusal logs a refusal, at most once per refusalLogEvery.
func (l *guardedListener) logRefusal(reason error) {
	l.mu.Lock()
	now := time.Now()
	if now.Sub(l.lastLog) < refusalLogEvery {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	n := l.suppressed
	l.lastLog, l.suppressed = now, 0
	l.mu.Unlock()
	l.log.Warn("control API: refused a connection", "err", reason, "more_refused_since_last_line", n)
}

// guardedConn is an accepted connection with its identified peer.
type guardedConn struct {
	net.Conn
	peer    peer
	once    sync.Once
	release func()
}

// Close implements net.Conn.
func (c *guardedConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}

// identify finds who is at the other end of c.
func identify(c net.Conn) peer {
	var p peer
	switch c := c.(type) {
	case *net.UnixConn:
		p.uid, p.err = unixPeerUID(c)
	case *net.TCPConn:
		p.uid, p.err = tcpPeerUID(c.RemoteAddr(), c.LocalAddr())
	case *guardedConn:
		return c.peer
	default:
		p.err = fmt.Errorf("unsupported connection type %T", c)
	}
	return p
}

// connContext records the peer's uid for peerAllowed.
func connContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, peerKey{}, identify(c))
}
