//go:build linux

package hid

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// The uhid ABI (include/uapi/linux/uhid.h). Every message to and from
// /dev/uhid is one struct uhid_event: a 4-byte type followed by a union of
// the request structures. The struct is packed, but the union holds the
// unpacked struct uhid_start_req (a __u64), so the union is 8-aligned and
// its size is the largest member (uhid_create2_req, 4372 bytes) rounded up
// to 4376: sizeof(struct uhid_event) is 4 + 4376 = 4380.
const (
	uhidEventSize      = 4380
	uhidDataMax        = 4096 // UHID_DATA_MAX
	uhidMaxDescriptor  = 4096 // HID_MAX_DESCRIPTOR_SIZE
	uhidNameLen        = 128
	uhidPhysLen        = 64
	uhidUniqLen        = 64
	uhidPayload        = 4 // offset of the union in struct uhid_event
	uhidOutputSizeOff  = uhidPayload + uhidDataMax
	uhidOutputRTypeOff = uhidOutputSizeOff + 2
	uhidCreate2RDOff   = uhidPayload + uhidNameLen + uhidPhysLen + uhidUniqLen + 2 + 2 + 4*4 // 280
	uhidReportLen      = 64                                                                  // a CTAPHID packet (CTAP 2.1 section 11.2.4)

	// enum uhid_event_type.
	uhidDestroy        = 1
	uhidStart          = 2
	uhidStop           = 3
	uhidOpen           = 4
	uhidClose          = 5
	uhidOutput         = 6
	uhidGetReport      = 9
	uhidGetReportReply = 10
	uhidCreate2        = 11
	uhidInput2         = 12
	uhidSetReport      = 13
	uhidSetReportReply = 14

	// enum uhid_report_type.
	uhidOutputReport = 1

	// BUS_USB from linux/input.h: libfido2 enumerates only USB-bus hidraw devices.
	uhidBusUSB = 3

	// EIO, returned to the kernel for GET_REPORT/SET_REPORT, which a FIDO
	// device does not support (it has no feature reports).
	uhidEIO = 5

	uhidDefaultPath = "/dev/uhid"
	uhidDefaultName = "vkey"
	uhidPhys        = "vkey/uhid"
)

// uhidReportDescriptor is the FIDO HID report descriptor (CTAP 2.1 section
// 11.2.8.1, "HID report descriptor and device discovery"): usage page
// 0xF1D0, usage 0x01 (CTAPHID), one 64-byte input report (usage 0x20) and
// one 64-byte output report (usage 0x21), no report IDs.
var uhidReportDescriptor = [...]byte{
	0x06, 0xD0, 0xF1, // Usage Page (FIDO Alliance, 0xF1D0)
	0x09, 0x01, // Usage (CTAPHID)
	0xA1, 0x01, // Collection (Application)
	0x09, 0x20, //   Usage (Input Report Data)
	0x15, 0x00, //   Logical Minimum (0)
	0x26, 0xFF, 0x00, //   Logical Maximum (255)
	0x75, 0x08, //   Report Size (8)
	0x95, 0x40, //   Report Count (64)
	0x81, 0x02, //   Input (Data, Var, Abs)
	0x09, 0x21, //   Usage (Output Report Data)
	0x15, 0x00, //   Logical Minimum (0)
	0x26, 0xFF, 0x00, //   Logical Maximum (255)
	0x75, 0x08, //   Report Size (8)
	0x95, 0x40, //   Report Count (64)
	0x91, 0x02, //   Output (Data, Var, Abs)
	0xC0, // End Collection
}

// ErrUHIDNotLoaded is matched (errors.Is) by the error OpenUHID returns when
// /dev/uhid does not exist, which means the uhid kernel module is not loaded.
var ErrUHIDNotLoaded = errors.New("uhid kernel module not loaded")

// ErrUHIDPermission is matched (errors.Is) by the error OpenUHID returns when
// the user may not open /dev/uhid.
var ErrUHIDPermission = errors.New("no permission to open /dev/uhid")

// uhidError carries a sentence meant for people plus the causes for errors.Is.
type uhidError struct {
	msg   string
	kind  error
	cause error
}

func (e *uhidError) Error() string   { return e.msg }
func (e *uhidError) Unwrap() []error { return []error{e.kind, e.cause} }

// UHIDConfig describes the virtual HID device OpenUHID creates.
type UHIDConfig struct {
	// Name is the HID device name (HID_NAME); at most 127 bytes, default "vkey".
	Name string
	// VendorID and ProductID are the USB IDs the device reports.
	VendorID, ProductID uint16
	// Serial is the device's serial number (HID_UNIQ): printable ASCII, at
	// most 63 bytes. A binary serial keeps udev from tagging the hidraw node
	// for the logged-in user.
	Serial string
	// Path is the uhid character device, default /dev/uhid.
	Path string
}

func (c UHIDConfig) withDefaults() UHIDConfig {
	if c.Name == "" {
		c.Name = uhidDefaultName
	}
	if c.Path == "" {
		c.Path = uhidDefaultPath
	}
	return c
}

func (c UHIDConfig) validate() error {
	if len(c.Name) >= uhidNameLen || strings.IndexByte(c.Name, 0) >= 0 {
		return fmt.Errorf("uhid: device name must be at most %d bytes without NUL", uhidNameLen-1)
	}
	if len(c.Serial) >= uhidUniqLen {
		return fmt.Errorf("uhid: serial must be at most %d bytes", uhidUniqLen-1)
	}
	for i := 0; i < len(c.Serial); i++ {
		if b := c.Serial[i]; b < 0x20 || b > 0x7e {
			return fmt.Errorf("uhid: serial must be printable ASCII (byte %d is %#02x)", i, b)
		}
	}
	return nil
}

// UHIDPort is a virtual FIDO HID device created through the Linux uhid
// driver. It implements Port: ReadReport returns the host's output reports
// (what a client writes to /dev/hidrawN) and WriteReport sends input
// reports (what the client reads).
type UHIDPort struct {
	cfg  UHIDConfig
	f    io.ReadWriteCloser
	wmu  sync.Mutex // serialises writes to f and guards wbuf
	wbuf []byte

	reports    chan []byte   // output reports, 64 bytes each
	done       chan struct{} // closed by Close
	readerDone chan struct{} // closed when the reader goroutine exits
	closeOnce  sync.Once
	closeErr   error

	mu        sync.Mutex // guards the fields below
	readerErr error
	started   bool
	openCount int // UHID_OPEN minus UHID_CLOSE: hosts that have the hidraw node open

	sysRoot string // /sys, replaced in tests
	devRoot string // /dev, replaced in tests
}

var _ Port = (*UHIDPort)(nil)

// OpenUHID creates a virtual FIDO device through /dev/uhid (UHID_CREATE2,
// bus USB, the FIDO report descriptor). Close destroys it. The errors a
// person can fix (module not loaded, no permission) are one sentence naming
// the fix and match ErrUHIDNotLoaded or ErrUHIDPermission.
func OpenUHID(cfg UHIDConfig) (*UHIDPort, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(cfg.Path, os.O_RDWR, 0)
	if err != nil {
		return nil, uhidOpenError(cfg.Path, err)
	}
	p, err := newUHIDPort(f, cfg)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// uhidOpenError turns an open(2) failure on the uhid device into a sentence
// with the fix.
func uhidOpenError(path string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &uhidError{
			msg:   fmt.Sprintf("%s does not exist: the uhid kernel module is not loaded: run `sudo modprobe uhid` (or use --transport pty)", path),
			kind:  ErrUHIDNotLoaded,
			cause: err,
		}
	case errors.Is(err, fs.ErrPermission):
		return &uhidError{
			msg: fmt.Sprintf("no permission to open %s: install vkey's udev rule with "+
				"`vkey udev-rules | sudo tee /etc/udev/rules.d/70-vkey.rules && sudo udevadm control --reload && sudo udevadm trigger` "+
				"(or use --transport pty)", path),
			kind:  ErrUHIDPermission,
			cause: err,
		}
	}
	return fmt.Errorf("uhid: open %s: %w", path, err)
}

// newUHIDPort creates the device on an already open uhid file (or a
// stand-in for it in tests) and starts reading its events.
func newUHIDPort(f io.ReadWriteCloser, cfg UHIDConfig) (*UHIDPort, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		_ = f.Close()
		return nil, err
	}
	p := &UHIDPort{
		cfg:        cfg,
		f:          f,
		wbuf:       make([]byte, uhidEventSize),
		reports:    make(chan []byte, 32),
		done:       make(chan struct{}),
		readerDone: make(chan struct{}),
		sysRoot:    "/sys",
		devRoot:    "/dev",
	}
	if err := p.writeEvent(func(ev []byte) { encodeCreate2(ev, cfg) }); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("uhid: create device %q: %w", cfg.Name, err)
	}
	go p.readLoop()
	return p, nil
}

// encodeCreate2 fills ev (uhidEventSize zeroed bytes) with UHID_CREATE2.
func encodeCreate2(ev []byte, cfg UHIDConfig) {
	ne := binary.NativeEndian
	ne.PutUint32(ev[0:], uhidCreate2)
	o := uhidPayload
	copy(ev[o:o+uhidNameLen-1], cfg.Name)
	o += uhidNameLen
	copy(ev[o:o+uhidPhysLen-1], uhidPhys)
	o += uhidPhysLen
	copy(ev[o:o+uhidUniqLen-1], cfg.Serial)
	o += uhidUniqLen
	ne.PutUint16(ev[o:], uint16(len(uhidReportDescriptor))) // rd_size
	ne.PutUint16(ev[o+2:], uhidBusUSB)                      // bus
	ne.PutUint32(ev[o+4:], uint32(cfg.VendorID))            // vendor
	ne.PutUint32(ev[o+8:], uint32(cfg.ProductID))           // product
	ne.PutUint32(ev[o+12:], 0x0100)                         // version
	ne.PutUint32(ev[o+16:], 0)                              // country
	copy(ev[uhidCreate2RDOff:uhidCreate2RDOff+uhidMaxDescriptor], uhidReportDescriptor[:])
}

// writeEvent builds one whole struct uhid_event with fill and writes it.
func (p *UHIDPort) writeEvent(fill func(ev []byte)) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	clear(p.wbuf)
	fill(p.wbuf)
	n, err := p.f.Write(p.wbuf)
	if err != nil {
		return err
	}
	if n != len(p.wbuf) {
		return fmt.Errorf("short write to uhid: %d of %d bytes", n, len(p.wbuf))
	}
	return nil
}

// readLoop reads kernel events until the file fails or is closed.
func (p *UHIDPort) readLoop() {
	defer close(p.readerDone)
	buf := make([]byte, uhidEventSize)
	for {
		clear(buf) // short events are extended with zeros (uhid.h)
		n, err := p.f.Read(buf)
		if err != nil {
			p.mu.Lock()
			p.readerErr = err
			p.mu.Unlock()
			return
		}
		if n < 4 {
			continue
		}
		if !p.handleEvent(buf) {
			return
		}
	}
}

// handleEvent processes one kernel event; it returns false once the port is closed.
func (p *UHIDPort) handleEvent(ev []byte) bool {
	ne := binary.NativeEndian
	typ := ne.Uint32(ev)
	switch typ {
	case uhidStart:
		p.mu.Lock()
		p.started = true
		p.mu.Unlock()
	case uhidStop:
		p.mu.Lock()
		p.started = false
		p.mu.Unlock()
	case uhidOpen:
		p.mu.Lock()
		p.openCount++
		p.mu.Unlock()
	case uhidClose:
		p.mu.Lock()
		if p.openCount > 0 {
			p.openCount--
		}
		p.mu.Unlock()
	case uhidOutput:
		report, ok := parseOutput(ev)
		if !ok {
			return true
		}
		select {
		case p.reports <- report:
		case <-p.done:
			return false
		}
	case uhidGetReport, uhidSetReport:
		// The kernel waits (up to 5 s) for a reply: refuse at once.
		reply := uint32(uhidGetReportReply)
		if typ == uhidSetReport {
			reply = uhidSetReportReply
		}
		id := ne.Uint32(ev[uhidPayload:])
		_ = p.writeEvent(func(r []byte) {
			ne.PutUint32(r, reply)
			ne.PutUint32(r[uhidPayload:], id)
			ne.PutUint16(r[uhidPayload+4:], uhidEIO)
		})
	}
	// Other (legacy or unknown) events need no answer.
	return true
}

// parseOutput extracts the 64-byte CTAPHID packet from a UHID_OUTPUT event.
// The data begins with the report number, as written to hidraw (0: the FIDO
// descriptor has no report IDs); the packet follows. Short packets are
// zero-padded, longer ones truncated to 64 bytes.
func parseOutput(ev []byte) ([]byte, bool) {
	ne := binary.NativeEndian
	if ev[uhidOutputRTypeOff] != uhidOutputReport {
		return nil, false
	}
	size := int(ne.Uint16(ev[uhidOutputSizeOff:]))
	if size < 1 || size > uhidDataMax {
		return nil, false
	}
	data := ev[uhidPayload+1 : uhidPayload+size]
	report := make([]byte, uhidReportLen)
	copy(report, data)
	return report, true
}

// ReadReport blocks until the host writes the next output report and
// returns its 64 bytes (without the report-ID byte). It fails once the port
// is closed or the uhid device fails.
func (p *UHIDPort) ReadReport() ([]byte, error) {
	select {
	case <-p.done:
		return nil, fmt.Errorf("uhid: %w", os.ErrClosed)
	default:
	}
	select {
	case r := <-p.reports:
		return r, nil
	case <-p.done:
		return nil, fmt.Errorf("uhid: %w", os.ErrClosed)
	case <-p.readerDone:
		// Deliver what the reader queued before it stopped.
		select {
		case r := <-p.reports:
			return r, nil
		default:
		}
		p.mu.Lock()
		err := p.readerErr
		p.mu.Unlock()
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("uhid: read: %w", err)
	}
}

// WriteReport sends one input report (UHID_INPUT2) to the host. report must
// be at most 64 bytes; a shorter one is zero-padded.
func (p *UHIDPort) WriteReport(report []byte) error {
	if len(report) > uhidReportLen {
		return fmt.Errorf("uhid: report of %d bytes exceeds %d", len(report), uhidReportLen)
	}
	select {
	case <-p.done:
		return fmt.Errorf("uhid: %w", os.ErrClosed)
	default:
	}
	err := p.writeEvent(func(ev []byte) {
		binary.NativeEndian.PutUint32(ev, uhidInput2)
		binary.NativeEndian.PutUint16(ev[uhidPayload:], uhidReportLen)
		copy(ev[uhidPayload+2:], report)
	})
	if err != nil {
		return fmt.Errorf("uhid: write input report: %w", err)
	}
	return nil
}

// Close destroys the device (UHID_DESTROY) and closes /dev/uhid; the
// kernel removes the hidraw node. Further calls return the first result.
func (p *UHIDPort) Close() error {
	p.closeOnce.Do(func() {
		close(p.done)
		err := p.writeEvent(func(ev []byte) { binary.NativeEndian.PutUint32(ev, uhidDestroy) })
		if cerr := p.f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			p.closeErr = fmt.Errorf("uhid: destroy device: %w", err)
		}
		// The file is pollable, so closing it ends a blocked Read.
		select {
		case <-p.readerDone:
		case <-time.After(2 * time.Second):
		}
	})
	return p.closeErr
}

// Opened reports whether a host currently has the device's hidraw node open.
func (p *UHIDPort) Opened() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.openCount > 0
}

// HidrawPath waits until the kernel has bound the device and created its
// hidraw node, and returns the node's path (/dev/hidrawN). The device is
// found through /sys/class/hidraw/*/device/uevent: by HID_UNIQ when a serial
// is configured, otherwise by HID_NAME. Without a deadline on ctx it waits
// at most 5 seconds.
func (p *UHIDPort) HidrawPath(ctx context.Context) (string, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if path, ok := p.findHidraw(); ok {
			return path, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("uhid: no hidraw node appeared for %q (is hid-generic loaded?): %w", p.cfg.Name, ctx.Err())
		case <-p.done:
			return "", fmt.Errorf("uhid: %w", os.ErrClosed)
		case <-tick.C:
		}
	}
}

// findHidraw looks once for this device's hidraw node.
func (p *UHIDPort) findHidraw() (string, bool) {
	key, want := "HID_NAME", p.cfg.Name
	if p.cfg.Serial != "" {
		key, want = "HID_UNIQ", p.cfg.Serial
	}
	entries, err := os.ReadDir(filepath.Join(p.sysRoot, "class", "hidraw"))
	if err != nil {
		return "", false
	}
	for _, e := range entries {
		uevent, err := os.ReadFile(filepath.Join(p.sysRoot, "class", "hidraw", e.Name(), "device", "uevent"))
		if err != nil {
			continue
		}
		if ueventValue(uevent, key) != want || ueventValue(uevent, "HID_PHYS") != uhidPhys {
			continue
		}
		node := filepath.Join(p.devRoot, e.Name())
		if _, err := os.Stat(node); err != nil {
			continue // devtmpfs (or udev) has not created the node yet
		}
		return node, true
	}
	return "", false
}

// ueventValue returns the value of KEY=value in a uevent file.
func ueventValue(uevent []byte, key string) string {
	for line := range bytes.Lines(uevent) {
		k, v, ok := bytes.Cut(bytes.TrimRight(line, "\n"), []byte("="))
		if ok && string(k) == key {
			return string(v)
		}
	}
	return ""
}
