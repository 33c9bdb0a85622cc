package tpm

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/google/go-tpm/tpm2/transport"
)

// commandTimeout bounds one TPM command over a socket, so a wedged swtpm
// cannot hang the authenticator forever.
const commandTimeout = 2 * time.Minute

// maxResponse is the largest response accepted from a socket (the TPM's own
// limit, MAX_RESPONSE_SIZE, is 4096 on common TPMs).
const maxResponse = 64 << 10

// socketTPM speaks the raw TPM 2.0 command stream over one persistent stream
// connection (swtpm's --server socket): write a command, read one response
// framed by the size field of its header (TPM 2.0 Part 1, section 18.2).
type socketTPM struct {
	conn net.Conn
}

// dialSocket connects to a swtpm server socket.
func dialSocket(path string) (transport.TPMCloser, error) {
	c, err := net.Dial("unix", path)
	if err != nil {
		return nil, err
	}
	return &socketTPM{conn: c}, nil
}

// Send implements transport.TPM.
func (s *socketTPM) Send(cmd []byte) ([]byte, error) {
	if err := s.conn.SetDeadline(time.Now().Add(commandTimeout)); err != nil {
		return nil, fmt.Errorf("set deadline: %w", err)
	}
	if _, err := s.conn.Write(cmd); err != nil {
		return nil, fmt.Errorf("send command: %w", err)
	}
	var hdr [10]byte // tag, responseSize, responseCode
	if _, err := io.ReadFull(s.conn, hdr[:]); err != nil {
		return nil, fmt.Errorf("read response header: %w", err)
	}
	size := binary.BigEndian.Uint32(hdr[2:6])
	if size < uint32(len(hdr)) || size > maxResponse {
		return nil, fmt.Errorf("bad response size %d", size)
	}
	rsp := make([]byte, size)
	copy(rsp, hdr[:])
	if _, err := io.ReadFull(s.conn, rsp[len(hdr):]); err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	return rsp, nil
}

// Close implements io.Closer.
func (s *socketTPM) Close() error { return s.conn.Close() }
