//go:build linux

package hid

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeUHID returns a port created on one end of a SOCK_SEQPACKET socketpair
// and the other end, which plays the kernel: each write or read there is one
// whole uhid event, as on /dev/uhid.
func fakeUHID(t *testing.T, cfg UHIDConfig) (*UHIDPort, *os.File) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("socketpair: %v", err)
	}
	// Non-blocking, so os.File uses the poller and Close ends a blocked Read,
	// as it does for /dev/uhid.
	for _, fd := range fds {
		if err := syscall.SetNonblock(fd, true); err != nil {
			t.Fatalf("set nonblock: %v", err)
		}
	}
	dev := os.NewFile(uintptr(fds[0]), "fake-uhid")
	kernel := os.NewFile(uintptr(fds[1]), "fake-kernel")
	t.Cleanup(func() { _ = kernel.Close() })
	p, err := newUHIDPort(dev, cfg)
	if err != nil {
		t.Fatalf("newUHIDPort: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p, kernel
}

// readEvent reads one event the port wrote, checking it is a whole struct uhid_event.
func readEvent(t *testing.T, kernel *os.File) []byte {
	t.Helper()
	if err := kernel.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatalf("deadline: %v", err)
	}
	buf := make([]byte, 2*uhidEventSize)
	n, err := kernel.Read(buf)
	if err != nil {
		t.Fatalf("read event: %v", err)
	}
	if n != uhidEventSize {
		t.Fatalf("event is %d bytes, want sizeof(struct uhid_event) = %d", n, uhidEventSize)
	}
	return buf[:n]
}

// sendEvent writes one kernel event of the given type, with payload at offset 4.
func sendEvent(t *testing.T, kernel *os.File, typ uint32, fill func(ev []byte)) {
	t.Helper()
	ev := make([]byte, uhidEventSize)
	binary.NativeEndian.PutUint32(ev, typ)
	if fill != nil {
		fill(ev)
	}
	if _, err := kernel.Write(ev); err != nil {
		t.Fatalf("write event: %v", err)
	}
}

func outputEvent(data []byte) func(ev []byte) {
	return func(ev []byte) {
		copy(ev[4:], data)
		binary.NativeEndian.PutUint16(ev[4+4096:], uint16(len(data)))
		ev[4+4096+2] = 1 // UHID_OUTPUT_REPORT
	}
}

func readReportTimeout(t *testing.T, p *UHIDPort) []byte {
	t.Helper()
	type result struct {
		r   []byte
		err error
	}
	ch := make(chan result, 1)
	go func() {
		r, err := p.ReadReport()
		ch <- result{r, err}
	}()
	select {
	case res := <-ch:
		if res.err != nil {
			t.Fatalf("ReadReport: %v", res.err)
		}
		return res.r
	case <-time.After(5 * time.Second):
		t.Fatal("ReadReport did not return")
		return nil
	}
}

func TestUHIDEventSize(t *testing.T) {
	// struct uhid_create2_req: name[128] phys[64] uniq[64] rd_size bus
	// vendor product version country rd_data[4096].
	create2 := 128 + 64 + 64 + 2 + 2 + 4 + 4 + 4 + 4 + 4096
	if create2 != 4372 {
		t.Fatalf("uhid_create2_req is %d bytes", create2)
	}
	// The union is 8-aligned (struct uhid_start_req holds a __u64).
	union := (create2 + 7) &^ 7
	if got := 4 + union; got != uhidEventSize {
		t.Fatalf("sizeof(struct uhid_event) = %d, constant says %d", got, uhidEventSize)
	}
	if uhidCreate2RDOff != 280 || uhidOutputSizeOff != 4100 || uhidOutputRTypeOff != 4102 {
		t.Fatalf("offsets: rd_data %d, output.size %d, output.rtype %d", uhidCreate2RDOff, uhidOutputSizeOff, uhidOutputRTypeOff)
	}
}

func TestUHIDCreate2(t *testing.T) {
	cfg := UHIDConfig{Name: "vkey test", VendorID: 0x1209, ProductID: 0xbeef, Serial: "vkey-0123"}
	_, kernel := fakeUHID(t, cfg)
	ev := readEvent(t, kernel)
	ne := binary.NativeEndian
	if typ := ne.Uint32(ev); typ != 11 {
		t.Fatalf("type %d, want UHID_CREATE2 (11)", typ)
	}
	cstr := func(b []byte) string { return string(b[:bytes.IndexByte(b, 0)]) }
	if got := cstr(ev[4 : 4+128]); got != cfg.Name {
		t.Errorf("name %q", got)
	}
	if got := cstr(ev[132 : 132+64]); got != "vkey/uhid" {
		t.Errorf("phys %q", got)
	}
	if got := cstr(ev[196 : 196+64]); got != cfg.Serial {
		t.Errorf("uniq %q", got)
	}
	rdSize := int(ne.Uint16(ev[260:]))
	if bus := ne.Uint16(ev[262:]); bus != 3 {
		t.Errorf("bus %d, want BUS_USB (3)", bus)
	}
	if v, p := ne.Uint32(ev[264:]), ne.Uint32(ev[268:]); v != 0x1209 || p != 0xbeef {
		t.Errorf("vendor %#x product %#x", v, p)
	}
	rd := ev[280 : 280+rdSize]
	if !bytes.Equal(ev[280+rdSize:], make([]byte, len(ev)-280-rdSize)) {
		t.Error("bytes after the report descriptor are not zero")
	}
	// Walk the descriptor's short items (HID 1.11 section 6.2.2.2).
	var usagePage, reportSize, reportCount uint32
	var usages []uint32
	inputs, outputs := 0, 0
	for i := 0; i < len(rd); {
		prefix := rd[i]
		n := int(prefix & 3)
		if n == 3 {
			n = 4
		}
		if i+1+n > len(rd) {
			t.Fatalf("descriptor item at %d runs past the end", i)
		}
		var v uint32
		for j := 0; j < n; j++ {
			v |= uint32(rd[i+1+j]) << (8 * j)
		}
		switch prefix &^ 3 {
		case 0x04:
			usagePage = v
		case 0x08:
			usages = append(usages, v)
		case 0x74:
			reportSize = v
		case 0x94:
			reportCount = v
		case 0x80:
			inputs++
			if reportSize*reportCount != 512 {
				t.Errorf("input report is %d bits, want 512", reportSize*reportCount)
			}
		case 0x90:
			outputs++
			if reportSize*reportCount != 512 {
				t.Errorf("output report is %d bits, want 512", reportSize*reportCount)
			}
		case 0x84:
			t.Error("descriptor declares a report ID")
		}
		i += 1 + n
	}
	if usagePage != 0xF1D0 || len(usages) == 0 || usages[0] != 0x01 {
		t.Errorf("usage page %#x usages %#x, want 0xF1D0 / 0x01", usagePage, usages)
	}
	if inputs != 1 || outputs != 1 {
		t.Errorf("%d input and %d output items, want 1 each", inputs, outputs)
	}
}

func TestUHIDOutputAndInput(t *testing.T) {
	p, kernel := fakeUHID(t, UHIDConfig{Name: "vkey test"})
	readEvent(t, kernel)         // CREATE2
	sendEvent(t, kernel, 2, nil) // START
	sendEvent(t, kernel, 4, nil) // OPEN

	// A host's hidraw write: report ID 0, then the 64-byte packet.
	packet := make([]byte, 64)
	for i := range packet {
		packet[i] = byte(i + 1)
	}
	sendEvent(t, kernel, 6, outputEvent(append([]byte{0}, packet...)))
	if got := readReportTimeout(t, p); !bytes.Equal(got, packet) {
		t.Fatalf("ReadReport = %x, want %x", got, packet)
	}
	if !p.Opened() {
		t.Error("Opened() false after UHID_OPEN")
	}

	// A short write is zero-padded to 64 bytes.
	sendEvent(t, kernel, 6, outputEvent([]byte{0, 0xff, 0xff, 0xff, 0xff, 0x86}))
	want := make([]byte, 64)
	copy(want, []byte{0xff, 0xff, 0xff, 0xff, 0x86})
	if got := readReportTimeout(t, p); !bytes.Equal(got, want) {
		t.Fatalf("short report = %x, want %x", got, want)
	}

	// Input reports go out as UHID_INPUT2 with size 64.
	reply := bytes.Repeat([]byte{0xab}, 64)
	if err := p.WriteReport(reply); err != nil {
		t.Fatalf("WriteReport: %v", err)
	}
	ev := readEvent(t, kernel)
	if typ := binary.NativeEndian.Uint32(ev); typ != 12 {
		t.Fatalf("type %d, want UHID_INPUT2 (12)", typ)
	}
	if size := binary.NativeEndian.Uint16(ev[4:]); size != 64 {
		t.Fatalf("input2 size %d", size)
	}
	if !bytes.Equal(ev[6:70], reply) || ev[70] != 0 {
		t.Fatalf("input2 data %x", ev[6:72])
	}
	if err := p.WriteReport(make([]byte, 65)); err == nil {
		t.Error("WriteReport accepted 65 bytes")
	}

	sendEvent(t, kernel, 5, nil) // CLOSE
	sendEvent(t, kernel, 3, nil) // STOP
	// The next event proves the two above were consumed.
	sendEvent(t, kernel, 6, outputEvent(append([]byte{0}, packet...)))
	readReportTimeout(t, p)
	if p.Opened() {
		t.Error("Opened() true after UHID_CLOSE")
	}
}

func TestUHIDReportRequestsAnswered(t *testing.T) {
	_, kernel := fakeUHID(t, UHIDConfig{})
	readEvent(t, kernel) // CREATE2
	for _, tc := range []struct{ req, reply uint32 }{{9, 10}, {13, 14}} {
		sendEvent(t, kernel, tc.req, func(ev []byte) {
			binary.NativeEndian.PutUint32(ev[4:], 0x1234abcd)
		})
		ev := readEvent(t, kernel)
		if typ := binary.NativeEndian.Uint32(ev); typ != tc.reply {
			t.Fatalf("reply type %d to %d, want %d", typ, tc.req, tc.reply)
		}
		if id := binary.NativeEndian.Uint32(ev[4:]); id != 0x1234abcd {
			t.Errorf("reply id %#x", id)
		}
		if e := binary.NativeEndian.Uint16(ev[8:]); e == 0 {
			t.Error("report request acknowledged with success; a FIDO device has no such reports")
		}
	}
}

func TestUHIDMalformedEvents(t *testing.T) {
	p, kernel := fakeUHID(t, UHIDConfig{})
	readEvent(t, kernel)
	// Short events, unknown types, absurd sizes, wrong report type.
	for _, ev := range [][]byte{{1}, {6, 0, 0, 0}, {0xff, 0xff, 0xff, 0xff, 1, 2}} {
		if _, err := kernel.Write(ev); err != nil {
			t.Fatal(err)
		}
	}
	sendEvent(t, kernel, 6, func(ev []byte) { binary.NativeEndian.PutUint16(ev[4100:], 0xffff); ev[4102] = 1 })
	sendEvent(t, kernel, 6, func(ev []byte) { binary.NativeEndian.PutUint16(ev[4100:], 65); ev[4102] = 0 })
	sendEvent(t, kernel, 6, outputEvent([]byte{0, 0x42}))
	got := readReportTimeout(t, p)
	if got[0] != 0x42 {
		t.Fatalf("after malformed events ReadReport = %x", got)
	}
}

func TestUHIDClose(t *testing.T) {
	p, kernel := fakeUHID(t, UHIDConfig{})
	readEvent(t, kernel)
	errc := make(chan error, 1)
	go func() {
		_, err := p.ReadReport()
		errc <- err
	}()
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ev := readEvent(t, kernel)
	if typ := binary.NativeEndian.Uint32(ev); typ != 1 {
		t.Fatalf("type %d, want UHID_DESTROY (1)", typ)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, os.ErrClosed) {
			t.Fatalf("blocked ReadReport returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadReport still blocked after Close")
	}
	if _, err := p.ReadReport(); err == nil {
		t.Error("ReadReport after Close succeeded")
	}
	if err := p.WriteReport(make([]byte, 64)); err == nil {
		t.Error("WriteReport after Close succeeded")
	}
	select {
	case <-p.readerDone:
	default:
		t.Error("reader goroutine still running after Close")
	}
}

func TestUHIDKernelGoesAway(t *testing.T) {
	p, kernel := fakeUHID(t, UHIDConfig{})
	readEvent(t, kernel)
	_ = kernel.Close()
	if _, err := p.ReadReport(); err == nil {
		t.Fatal("ReadReport succeeded after the device end closed")
	}
}

func TestUHIDConfigValidation(t *testing.T) {
	for _, cfg := range []UHIDConfig{
		{Serial: "bin\x00ary"},
		{Serial: "caf\xc3\xa9"},
		{Serial: strings.Repeat("s", 64)},
		{Name: strings.Repeat("n", 128)},
	} {
		if _, err := OpenUHID(cfg); err == nil || errors.Is(err, ErrUHIDNotLoaded) {
			t.Errorf("OpenUHID(%+q) = %v, want a validation error", cfg.Serial, err)
		}
	}
}

func TestUHIDOpenErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "uhid")
	_, err := OpenUHID(UHIDConfig{Path: missing})
	if !errors.Is(err, ErrUHIDNotLoaded) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing device: %v", err)
	}
	if !strings.Contains(err.Error(), "sudo modprobe uhid") || !strings.Contains(err.Error(), "--transport pty") {
		t.Errorf("missing device message lacks the fix: %q", err)
	}

	err = uhidOpenError("/dev/uhid", &fs.PathError{Op: "open", Path: "/dev/uhid", Err: syscall.EACCES})
	if !errors.Is(err, ErrUHIDPermission) || !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("permission error: %v", err)
	}
	if !strings.Contains(err.Error(), "vkey udev-rules | sudo tee /etc/udev/rules.d/70-vkey.rules") {
		t.Errorf("permission message lacks the udev rule: %q", err)
	}
	if os.Geteuid() != 0 {
		locked := filepath.Join(t.TempDir(), "uhid")
		if err := os.WriteFile(locked, nil, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := OpenUHID(UHIDConfig{Path: locked}); !errors.Is(err, ErrUHIDPermission) {
			t.Errorf("unreadable device: %v", err)
		}
	}
}

func TestUHIDHidrawPath(t *testing.T) {
	p, kernel := fakeUHID(t, UHIDConfig{Name: "vkey", Serial: "vkey-42"})
	readEvent(t, kernel)
	root := t.TempDir()
	p.sysRoot = filepath.Join(root, "sys")
	p.devRoot = filepath.Join(root, "dev")
	addHidraw := func(node, uevent string) {
		dir := filepath.Join(p.sysRoot, "class", "hidraw", node, "device")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "uevent"), []byte(uevent), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(p.devRoot, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p.devRoot, node), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	addHidraw("hidraw0", "DRIVER=hid-generic\nHID_ID=0003:00001050:00000407\nHID_NAME=vkey\nHID_PHYS=usb-0000:00:14.0-1/input1\nHID_UNIQ=other\n")

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if path, err := p.HidrawPath(ctx); err == nil {
		t.Fatalf("matched another device: %s", path)
	}

	addHidraw("hidraw3", "DRIVER=hid-generic\nHID_ID=0003:00000000:00000000\nHID_NAME=vkey\nHID_PHYS=vkey/uhid\nHID_UNIQ=vkey-42\n")
	path, err := p.HidrawPath(context.Background())
	if err != nil {
		t.Fatalf("HidrawPath: %v", err)
	}
	if want := filepath.Join(p.devRoot, "hidraw3"); path != want {
		t.Fatalf("HidrawPath = %s, want %s", path, want)
	}
}
