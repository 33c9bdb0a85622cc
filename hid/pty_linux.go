//go:build linux

package hid

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// PTYPort is the device side of a pty that stands in for a hidraw node:
// libfido2 opens any character device it is given and, when the hidraw
// report-descriptor ioctl fails, falls back to 64-byte reports. The host
// writes 65 bytes per report (report ID 0x00, then the packet) and reads 64.
//
// A pty hands each byte to one reader only, so it serves one host process
// at a time; stale replies a previous host left unread are flushed when a
// new host allocates a channel (CTAPHID_INIT on the broadcast channel).
type PTYPort struct {
	master *os.File
	slave  *os.File // kept open so the master never reads EIO between hosts
	path   string   // /dev/pts/N

	// Only ReadReport touches buf and have.
	buf  [ReportSize + 1]byte
	have int

	mu   sync.Mutex
	link string // symlink maintained by Link, removed by Close
}

// OpenPTY creates a pty in raw mode for a host to open by its Path.
func OpenPTY() (*PTYPort, error) {
	mfd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("hid: open /dev/ptmx: %w", err)
	}
	p, err := newPTY(mfd)
	if err != nil {
		_ = unix.Close(mfd)
		return nil, err
	}
	return p, nil
}

// newPTY does unlockpt and ptsname, opens the slave and makes it raw
// (posix_openpt(3) and cfmakeraw(3) in terms of their Linux ioctls).
func newPTY(mfd int) (*PTYPort, error) {
	if err := unix.IoctlSetPointerInt(mfd, unix.TIOCSPTLCK, 0); err != nil {
		return nil, fmt.Errorf("hid: unlock pty: %w", err)
	}
	n, err := unix.IoctlGetUint32(mfd, unix.TIOCGPTN)
	if err != nil {
		return nil, fmt.Errorf("hid: pty number: %w", err)
	}
	path := fmt.Sprintf("/dev/pts/%d", n)
	// grantpt(3) has nothing to do on devpts: the slave already belongs
	// to the caller.
	sfd, err := unix.Open(path, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("hid: open %s: %w", path, err)
	}
	// devpts usually gives the tty group write access (mode 0620), which
	// lets write(1) and wall inject bytes into the reports: owner only.
	if err := unix.Fchmod(sfd, 0o600); err != nil {
		_ = unix.Close(sfd)
		return nil, fmt.Errorf("hid: chmod %s: %w", path, err)
	}
	if err := makeRaw(sfd); err != nil {
		_ = unix.Close(sfd)
		return nil, fmt.Errorf("hid: raw mode on %s: %w", path, err)
	}
	// Non-blocking, so that the os.File uses the poller and Close
	// unblocks a pending Read or Write.
	if err := unix.SetNonblock(mfd, true); err != nil {
		_ = unix.Close(sfd)
		return nil, fmt.Errorf("hid: pty master: %w", err)
	}
	return &PTYPort{master: os.NewFile(uintptr(mfd), "/dev/ptmx"), slave: os.NewFile(uintptr(sfd), path), path: path}, nil
}

// makeRaw is cfmakeraw(3), with reads of whole 64-byte reports (VMIN=64,
// VTIME=0) for the host.
func makeRaw(fd int) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN] = ReportSize
	t.Cc[unix.VTIME] = 0
	return unix.IoctlSetTermios(fd, unix.TCSETS, t)
}

// Path is the pty's path (/dev/pts/N), which a host opens like a hidraw
// node.
func (p *PTYPort) Path() string { return p.path }

// Link makes path a symlink to the pty; Close removes it. An existing path
// is replaced (atomically) only if it is such a symlink, one a pty port
// made before (pointing into /dev/pts): anything else there is refused,
// never overwritten.
func (p *PTYPort) Link(path string) error {
	if fi, err := os.Lstat(path); err == nil {
		target, _ := os.Readlink(path)
		if fi.Mode()&fs.ModeSymlink == 0 || !strings.HasPrefix(target, "/dev/pts/") {
			return fmt.Errorf("hid: %s exists and is not a pty symlink made by vkey: remove it, or choose another path", path)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("hid: link %s: %w", path, err)
	}
	tmp := fmt.Sprintf("%s.tmp%d", path, os.Getpid())
	_ = os.Remove(tmp)
	if err := os.Symlink(p.path, tmp); err != nil {
		return fmt.Errorf("hid: link %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("hid: link %s: %w", path, err)
	}
	p.mu.Lock()
	p.link = path
	p.mu.Unlock()
	return nil
}

// ReadReport implements Port: it reads one 65-byte unit from the host and
// returns the 64-byte report after the report ID. It must not be called
// concurrently.
func (p *PTYPort) ReadReport() ([]byte, error) {
	for p.have < len(p.buf) {
		n, err := p.master.Read(p.buf[p.have:])
		p.have += n
		if err != nil {
			return nil, err
		}
	}
	p.have = 0
	r := bytes.Clone(p.buf[1:])
	if binary.BigEndian.Uint32(r) == BroadcastCID && r[4] == typeInit|CmdInit {
		// A new host: drop what earlier hosts left unread, or it would
		// read that first (CTAP 2.1 section 11.2.9.1.3 has each host
		// match the INIT nonce, but libfido2 reads a bounded number of
		// packets).
		p.flush()
	}
	return r, nil
}

// flush discards the reports the host has not read (tcflush(TCIFLUSH) on
// the slave: the master's output is the slave's input queue).
func (p *PTYPort) flush() {
	rc, err := p.slave.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = unix.IoctlSetInt(int(fd), unix.TCFLSH, unix.TCIFLUSH)
	})
}

// WriteReport implements Port: the host reads 64-byte reports.
func (p *PTYPort) WriteReport(report []byte) error {
	var buf [ReportSize]byte
	copy(buf[:], report)
	_, err := p.master.Write(buf[:])
	return err
}

// Close implements Port: it closes the pty and removes the symlink made by
// Link if it still points to the pty.
func (p *PTYPort) Close() error {
	err := errors.Join(p.master.Close(), p.slave.Close())
	p.mu.Lock()
	link := p.link
	p.link = ""
	p.mu.Unlock()
	if link != "" {
		if target, lerr := os.Readlink(link); lerr == nil && filepath.Clean(target) == p.path {
			if rerr := os.Remove(link); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
				err = errors.Join(err, rerr)
			}
		}
	}
	if errors.Is(err, os.ErrClosed) { // closed twice
		return nil
	}
	return err
}
