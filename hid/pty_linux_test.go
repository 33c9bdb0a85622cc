//go:build linux

package hid

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func openPTY(t *testing.T) *PTYPort {
	t.Helper()
	p, err := OpenPTY()
	if err != nil {
		t.Skipf("no pty available: %v", err)
	}
	return p
}

func TestPTYRoundTrip(t *testing.T) {
	p := openPTY(t)
	serve(t, newFake(), DeviceConfig{}, p)
	for i := range 2 { // a second host after the first one left
		c, err := Dial(t.Context(), p.Path())
		if err != nil {
			t.Fatalf("host %d: %v", i, err)
		}
		exercise(t, c)
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
}

func TestPTYContextCancel(t *testing.T) {
	p := openPTY(t)
	h := newFake()
	serve(t, h, DeviceConfig{}, p)
	c, err := Dial(t.Context(), p.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-h.started
		cancel()
	}()
	if _, err := c.CBOR(ctx, []byte{fakeBlockUP}); err != context.Canceled {
		t.Fatalf("CBOR error %v, want context.Canceled", err)
	}
	if got, err := c.CBOR(t.Context(), []byte{4}); err != nil || !bytes.Equal(got, []byte{0, 4}) {
		t.Fatalf("CBOR after cancel = %x, %v", got, err)
	}
}

// TestPTYFlushOnInit leaves replies nobody read in the pty, as a host that
// died would, and checks that a broadcast INIT discards them and that other
// packets do not.
func TestPTYFlushOnInit(t *testing.T) {
	p := openPTY(t)
	defer p.Close()
	fd, err := unix.Open(p.Path(), unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	hostWrite := func(rep []byte) {
		t.Helper()
		if _, err := unix.Write(fd, append([]byte{0}, rep...)); err != nil {
			t.Fatal(err)
		}
	}
	pending := func() bool {
		var buf [ReportSize]byte
		n, err := unix.Read(fd, buf[:])
		if err != nil && err != unix.EAGAIN {
			t.Fatal(err)
		}
		return n > 0
	}
	stale := bytes.Repeat([]byte{0xee}, ReportSize)

	// A packet that is not a broadcast INIT keeps what is queued.
	if err := p.WriteReport(stale); err != nil {
		t.Fatal(err)
	}
	hostWrite(initPacket(7, CmdPing, 1, []byte{1}))
	if r, err := p.ReadReport(); err != nil || r[4] != 0x80|CmdPing {
		t.Fatalf("ReadReport = %x, %v", r, err)
	}
	if !pending() {
		t.Fatal("a PING flushed the pty")
	}

	// A broadcast INIT drops it.
	for range 3 {
		if err := p.WriteReport(stale); err != nil {
			t.Fatal(err)
		}
	}
	hostWrite(initPacket(BroadcastCID, CmdInit, 8, []byte("12345678")))
	if r, err := p.ReadReport(); err != nil || r[4] != 0x80|CmdInit {
		t.Fatalf("ReadReport = %x, %v", r, err)
	}
	if pending() {
		t.Fatal("stale reports survived a broadcast INIT")
	}
}

// TestPTYLink: Link replaces only a pty symlink an earlier run left, and
// refuses a regular file, a folder or a symlink elsewhere, which stay as
// they were (issue 11, point 13); Close removes the link.
// TestPTYOwnerOnly: the pty is the owner's alone, whatever mode devpts
// gives new ptys (0620 with the tty group on most desktops).
func TestPTYOwnerOnly(t *testing.T) {
	p := openPTY(t)
	fi, err := os.Stat(p.Path())
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("%s has mode %04o, want 0600", p.Path(), perm)
	}
}

func TestPTYLink(t *testing.T) {
	p := openPTY(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other")
	if err := os.Symlink(file, other); err != nil {
		t.Fatal(err)
	}
	folder := filepath.Join(dir, "folder")
	if err := os.Mkdir(folder, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{file, other, folder} {
		if err := p.Link(path); err == nil || !strings.Contains(err.Error(), "remove it") {
			t.Errorf("Link(%s) = %v, want a refusal", path, err)
		}
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "precious" {
		t.Errorf("the file was touched: %q, %v", b, err)
	}
	if target, _ := os.Readlink(other); target != file {
		t.Errorf("the foreign symlink was replaced: -> %q", target)
	}

	link := filepath.Join(dir, "vkey-hidraw")
	if err := os.Symlink("/dev/pts/999999", link); err != nil { // left by an earlier run
		t.Fatal(err)
	}
	if err := p.Link(link); err != nil {
		t.Fatal(err)
	}
	if target, err := os.Readlink(link); err != nil || target != p.Path() {
		t.Fatalf("link -> %q, %v; want %q", target, err, p.Path())
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(link); !os.IsNotExist(err) {
		t.Errorf("link still there after Close: %v", err)
	}
}

// getInfoHandler answers authenticatorGetInfo (0x04) with a minimal valid
// map {1: ["FIDO_2_0"], 3: aaguid} and everything else with
// CTAP1_ERR_INVALID_COMMAND.
type getInfoHandler struct{}

var testAAGUID = []byte("vkey-hid-testkey")

func (getInfoHandler) HandleCBOR(_ context.Context, msg []byte) []byte {
	if msg[0] != 0x04 {
		return []byte{0x01}
	}
	resp := []byte{0x00, 0xa2, 0x01, 0x81, 0x68}
	resp = append(resp, "FIDO_2_0"...)
	resp = append(resp, 0x03, 0x50)
	return append(resp, testAAGUID...)
}

func (getInfoHandler) HandleMSG(context.Context, []byte) []byte { return []byte{0x6d, 0x00} }

// TestFido2TokenOverPTY runs the real C client (libfido2's fido2-token)
// against the engine over a pty.
func TestFido2TokenOverPTY(t *testing.T) {
	tool, err := exec.LookPath("fido2-token")
	if err != nil {
		t.Skip("fido2-token not installed (Debian: apt-get install fido2-tools)")
	}
	p := openPTY(t)
	serve(t, getInfoHandler{}, DeviceConfig{Capabilities: CapabilityWink | CapabilityCBOR | CapabilityNMSG}, p)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second) // a bound, not a speed check
	defer cancel()
	out, err := exec.CommandContext(ctx, tool, "-I", p.Path()).CombinedOutput()
	if err != nil {
		t.Fatalf("fido2-token -I: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "FIDO_2_0") {
		t.Errorf("fido2-token -I output does not mention FIDO_2_0:\n%s", out)
	}
	if !strings.Contains(string(out), "766b65792d6869642d746573746b6579") {
		t.Errorf("fido2-token -I output does not show the aaguid:\n%s", out)
	}
	t.Logf("fido2-token -I:\n%s", out)
}
