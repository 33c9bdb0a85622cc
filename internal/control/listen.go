package control

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrSocketInUse is the error of ListenUnix when a running key answers on
// the socket.
var ErrSocketInUse = errors.New("control socket in use")

// ListenUnix listens on the unix socket path, owner-only: its folder is
// made (or checked to be) ours with mode 0700 and the socket gets mode
// 0600. A socket left by a key that no longer runs is replaced; one that
// answers means a key of that name runs already.
func ListenUnix(path string) (net.Listener, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("control socket folder: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return nil, fmt.Errorf("control socket folder: %w", err)
	}
	if fi.IsDir() && ownedBy(fi, os.Getuid()) && fi.Mode().Perm() != 0o700 {
		// Our own folder with a loose mode: tighten it.
		if err := os.Chmod(dir, 0o700); err != nil {
			return nil, fmt.Errorf("control socket folder: %w", err)
		}
	} else if err := checkRuntimeDirInfo(dir, fi, os.Getuid()); err != nil {
		return nil, err // the same sentence as the CLI's
	}
	if _, err := os.Lstat(path); err == nil {
		c, err := net.DialTimeout("unix", path, time.Second)
		if err == nil {
			c.Close()
			return nil, fmt.Errorf("%w: a key already listens on %s", ErrSocketInUse, path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("removing stale control socket: %w", err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	return ln, nil
}

// ownedBy reports whether fi belongs to uid.
func ownedBy(fi os.FileInfo, uid int) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == uid
}

// ListenLoopback listens on a loopback TCP address (127.0.0.1:PORT,
// [::1]:PORT or localhost:PORT; port 0 picks one). Connections from other
// users are refused like on the unix socket (the peer's uid is looked up
// in /proc/net/tcp).
func ListenLoopback(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("--control-addr %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("--control-addr %q: only loopback addresses are allowed (127.0.0.1:PORT)", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("control address: %w", err)
	}
	return ln, nil
}

type peerKey struct{}

// peer is who is at the other end of a connection.
type peer struct {
	uid int
	err error
}

// peerAllowed refuses a peer that is not this process's user (or that
// could not be identified).
func peerAllowed(ctx context.Context) error {
	p, ok := ctx.Value(peerKey{}).(peer)
	if !ok {
		return nil // served without a listener of ours (tests with httptest)
	}
	return p.allowed()
}

// allowed refuses a peer that is not this process's user.
func (p peer) allowed() error {
	if p.err != nil {
		return fmt.Errorf("refused: cannot identify the connecting user: %v", p.err)
	}
	if p.uid != os.Getuid() {
		return fmt.Errorf("refused: the control API answers only its owner (uid %d), not uid %d", os.Getuid(), p.uid)
	}
	return nil
}

// unixPeerUID reads SO_PEERCRED.
func unixPeerUID(c *net.UnixConn) (int, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	var cred *syscall.Ucred
	var serr error
	if err := raw.Control(func(fd uintptr) {
		cred, serr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return -1, err
	}
	if serr != nil {
		return -1, fmt.Errorf("SO_PEERCRED: %w", serr)
	}
	return int(cred.Uid), nil
}

// tcpPeerUID finds the owner of the client socket (local address = our
// peer, remote address = us) in /proc/net/tcp and /proc/net/tcp6.
func tcpPeerUID(remote, local net.Addr) (int, error) {
	r, ok1 := remote.(*net.TCPAddr)
	l, ok2 := local.(*net.TCPAddr)
	if !ok1 || !ok2 {
		return -1, errors.New("not a TCP connection")
	}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		uid, err := findSocketUID(f, r, l)
		if err == nil {
			return uid, nil
		}
	}
	return -1, fmt.Errorf("connection from %s not found in /proc/net/tcp", remote)
}

func findSocketUID(file string, localAddr, remoteAddr *net.TCPAddr) (int, error) {
	f, err := os.Open(file)
	if err != nil {
		return -1, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 8 {
			continue
		}
		la, err1 := parseProcAddr(fields[1])
		ra, err2 := parseProcAddr(fields[2])
		if err1 != nil || err2 != nil {
			continue
		}
		if la.Port == localAddr.Port && ra.Port == remoteAddr.Port && la.IP.Equal(localAddr.IP) && ra.IP.Equal(remoteAddr.IP) {
			uid, err := strconv.Atoi(fields[7])
			if err != nil {
				return -1, err
			}
			return uid, nil
		}
	}
	if err := sc.Err(); err != nil {
		return -1, err
	}
	return -1, errors.New("not found")
}

// parseProcAddr parses "0100007F:1F90": the address as 32-bit words in
// host byte order, then the port in hex.
func parseProcAddr(s string) (*net.TCPAddr, error) {
	ipHex, portHex, ok := strings.Cut(s, ":")
	if !ok {
		return nil, errors.New("bad address")
	}
	raw, err := hex.DecodeString(ipHex)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return nil, errors.New("bad address")
	}
	ip := make(net.IP, len(raw))
	for i := 0; i < len(raw); i += 4 {
		binary.NativeEndian.PutUint32(ip[i:], binary.BigEndian.Uint32(raw[i:i+4]))
	}
	port, err := strconv.ParseUint(portHex, 16, 16)
	if err != nil {
		return nil, err
	}
	return &net.TCPAddr{IP: ip, Port: int(port)}, nil
}
