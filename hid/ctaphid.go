// Package hid implements CTAPHID, the USB HID transport of CTAP 2.1
// (section 11.2), over 64-byte reports, and the transports that carry those
// reports: an in-process pipe, UDP, a pty that stands in for hidraw, and
// (on Linux) uhid.
//
// The device side is [Device]: it serves any [Handler] on a [Port]. The host
// side is [Client]: it talks to any device through a Port, or through
// [Dial] for a hidraw node, a pty or a UDP address.
package hid

import (
	"encoding/binary"
	"fmt"
)

// ReportSize is the size of every CTAPHID packet (HID report), in bytes.
const ReportSize = 64

// Packet layout (CTAP 2.1 section 11.2.4): an initialization packet is
// CID(4) | CMD(1, bit 7 set) | BCNTH | BCNTL | DATA(57); a continuation
// packet is CID(4) | SEQ(1, bit 7 clear) | DATA(59).
const (
	initPayload = ReportSize - 7 // 57
	contPayload = ReportSize - 5 // 59
	maxSeq      = 0x7f
	// MaxFramedSize is the largest message the framing can carry:
	// one initialization packet and 128 continuation packets.
	MaxFramedSize = initPayload + (maxSeq+1)*contPayload // 7609
	typeInit      = 0x80
)

// BroadcastCID is the channel a host uses to ask for a channel of its own
// (CTAP 2.1 section 11.2.9.1.3).
const BroadcastCID uint32 = 0xffffffff

// CTAPHID commands (CTAP 2.1 section 11.2.9), without the initialization
// packet bit.
const (
	CmdPing      byte = 0x01 // CTAPHID_PING: echo
	CmdMsg       byte = 0x03 // CTAPHID_MSG: a U2F (CTAP1) APDU
	CmdLock      byte = 0x04 // CTAPHID_LOCK: exclusive lock for one channel
	CmdInit      byte = 0x06 // CTAPHID_INIT: allocate or resynchronize a channel
	CmdWink      byte = 0x08 // CTAPHID_WINK: identify the device
	CmdCBOR      byte = 0x10 // CTAPHID_CBOR: a CTAP2 command
	CmdCancel    byte = 0x11 // CTAPHID_CANCEL: abort the channel's request
	CmdKeepalive byte = 0x3b // CTAPHID_KEEPALIVE: device to host, while processing
	CmdError     byte = 0x3f // CTAPHID_ERROR: device to host, an [Error] code
)

// Capability flags in the CTAPHID_INIT response (CTAP 2.1 section 11.2.9.1.3).
const (
	CapabilityWink byte = 0x01 // CAPABILITY_WINK: implements CTAPHID_WINK
	CapabilityCBOR byte = 0x04 // CAPABILITY_CBOR: implements CTAPHID_CBOR
	CapabilityNMSG byte = 0x08 // CAPABILITY_NMSG: does NOT implement CTAPHID_MSG
)

// Keepalive status codes (CTAP 2.1 section 11.2.9.2.1).
const (
	StatusProcessing byte = 1 // STATUS_PROCESSING: still working
	StatusUPNeeded   byte = 2 // STATUS_UPNEEDED: waiting for user presence
)

// ProtocolVersion is the CTAPHID protocol version a device reports in its
// CTAPHID_INIT response.
const ProtocolVersion byte = 2

// Error is a CTAPHID_ERROR code (CTAP 2.1 section 11.2.9.1.6). A [Client]
// returns one when the device answers with CTAPHID_ERROR.
type Error byte

// CTAPHID error codes.
const (
	ErrInvalidCmd     Error = 0x01 // ERR_INVALID_CMD
	ErrInvalidPar     Error = 0x02 // ERR_INVALID_PAR
	ErrInvalidLen     Error = 0x03 // ERR_INVALID_LEN
	ErrInvalidSeq     Error = 0x04 // ERR_INVALID_SEQ
	ErrMsgTimeout     Error = 0x05 // ERR_MSG_TIMEOUT
	ErrChannelBusy    Error = 0x06 // ERR_CHANNEL_BUSY
	ErrLockRequired   Error = 0x0a // ERR_LOCK_REQUIRED
	ErrInvalidChannel Error = 0x0b // ERR_INVALID_CHANNEL
	ErrOther          Error = 0x7f // ERR_OTHER
)

var errorNames = map[Error]string{
	ErrInvalidCmd:     "ERR_INVALID_CMD: the command is not supported",
	ErrInvalidPar:     "ERR_INVALID_PAR: invalid parameter",
	ErrInvalidLen:     "ERR_INVALID_LEN: invalid message length",
	ErrInvalidSeq:     "ERR_INVALID_SEQ: packet out of sequence",
	ErrMsgTimeout:     "ERR_MSG_TIMEOUT: the message timed out",
	ErrChannelBusy:    "ERR_CHANNEL_BUSY: the device is busy with another channel",
	ErrLockRequired:   "ERR_LOCK_REQUIRED: another channel holds the lock",
	ErrInvalidChannel: "ERR_INVALID_CHANNEL: invalid channel",
	ErrOther:          "ERR_OTHER: unspecified error",
}

// Error implements error.
func (e Error) Error() string {
	if s, ok := errorNames[e]; ok {
		return "ctaphid: " + s
	}
	return fmt.Sprintf("ctaphid: error 0x%02x", byte(e))
}

// packet is one decoded CTAPHID report.
type packet struct {
	cid  uint32
	init bool
	cmd  byte // initialization packets: command without the type bit
	bcnt int  // initialization packets: total message length
	seq  byte // continuation packets
	data []byte
}

// parsePacket decodes a report; data aliases r. Reports shorter than 64 bytes are treated
// as if zero-padded (a HID report has a fixed size; some transports cut
// trailing bytes), longer ones are cut to 64. ok is false when the report
// is too short to carry a channel and a command or sequence byte.
func parsePacket(r []byte) (packet, bool) {
	if len(r) < 5 {
		return packet{}, false
	}
	buf := r[:min(len(r), ReportSize):min(len(r), ReportSize)]
	if len(buf) < ReportSize {
		buf = make([]byte, ReportSize)
		copy(buf, r)
	}
	p := packet{cid: binary.BigEndian.Uint32(buf[0:4])}
	if buf[4]&typeInit != 0 {
		p.init = true
		p.cmd = buf[4] &^ typeInit
		p.bcnt = int(binary.BigEndian.Uint16(buf[5:7]))
		p.data = buf[7:]
	} else {
		p.seq = buf[4]
		p.data = buf[5:]
	}
	return p, true
}

// fragment splits a message into reports (CTAP 2.1 section 11.2.4) and calls
// emit for each. The message must not exceed MaxFramedSize.
func fragment(cid uint32, cmd byte, msg []byte, emit func([]byte) error) error {
	reports, err := frames(cid, cmd, msg)
	if err != nil {
		return err
	}
	for _, r := range reports {
		if err := emit(r); err != nil {
			return err
		}
	}
	return nil
}

// frames splits a message into reports (CTAP 2.1 section 11.2.4): an
// initialization packet and as many continuation packets as needed, each
// its own 64 bytes of one allocation. The message must not exceed
// MaxFramedSize.
func frames(cid uint32, cmd byte, msg []byte) ([][]byte, error) {
	var f frameBuffer
	return f.frame(cid, cmd, msg)
}

// frameBuffer is storage for frames that a caller reuses when the reports
// are consumed before the next message.
type frameBuffer struct {
	backing []byte
	reports [][]byte
}

// frame is frames into f's storage, grown as needed: the reports are valid
// until the next call.
func (f *frameBuffer) frame(cid uint32, cmd byte, msg []byte) ([][]byte, error) {
	if len(msg) > MaxFramedSize {
		return nil, fmt.Errorf("ctaphid: message of %d bytes exceeds the %d-byte framing limit", len(msg), MaxFramedSize)
	}
	n := 1 + (max(len(msg)-initPayload, 0)+contPayload-1)/contPayload
	if cap(f.backing) < n*ReportSize {
		f.backing = make([]byte, n*ReportSize)
		f.reports = make([][]byte, 0, n)
	}
	backing := f.backing[:n*ReportSize]
	clear(backing)
	reports := f.reports[:0]
	for i := range n {
		reports = append(reports, backing[i*ReportSize:(i+1)*ReportSize:(i+1)*ReportSize])
	}
	f.reports = reports
	r := reports[0]
	binary.BigEndian.PutUint32(r[0:4], cid)
	r[4] = typeInit | cmd
	binary.BigEndian.PutUint16(r[5:7], uint16(len(msg)))
	msg = msg[copy(r[7:], msg):]
	for seq, r := range reports[1:] {
		binary.BigEndian.PutUint32(r[0:4], cid)
		r[4] = byte(seq)
		msg = msg[copy(r[5:], msg):]
	}
	return reports, nil
}
