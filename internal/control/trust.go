package control

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
)

// UntrustedError is the refusal of a control socket, or of its folder,
// that another local user could have planted: the CLI would send it PINs.
type UntrustedError struct{ msg string }

// Error implements error.
func (e *UntrustedError) Error() string { return e.msg }

// CheckRuntimeDir accepts dir, the folder of control sockets, only when it
// is this user's alone: a real folder (not a symlink) owned by the user,
// with mode 0700. Otherwise another user may have created it first (the
// /tmp/vkey-UID fallback without XDG_RUNTIME_DIR) to catch the CLI's
// requests. A folder that does not exist is an error wrapping
// fs.ErrNotExist (no key runs); the others are *UntrustedError, saying
// what to do.
func CheckRuntimeDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("control socket folder: %w", err)
	}
	return checkRuntimeDirInfo(dir, fi, os.Getuid())
}

func checkRuntimeDirInfo(dir string, fi fs.FileInfo, uid int) error {
	fix := "remove it (`rm -r " + dir + "`, as its owner or root) or set XDG_RUNTIME_DIR to a folder of yours"
	if !fi.IsDir() {
		return &UntrustedError{fmt.Sprintf("the control socket folder %s is not a folder (a symlink or a file another user may have planted): %s", dir, fix)}
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return &UntrustedError{fmt.Sprintf("the owner of the control socket folder %s cannot be read: set XDG_RUNTIME_DIR to a folder of yours", dir)}
	}
	if int(st.Uid) != uid {
		return &UntrustedError{fmt.Sprintf("the control socket folder %s belongs to uid %d, not to you (uid %d): another user may have planted it to receive your PINs; %s", dir, st.Uid, uid, fix)}
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		return &UntrustedError{fmt.Sprintf("the control socket folder %s has mode %04o, so others may put sockets in it: run `chmod 700 %s`", dir, perm, dir)}
	}
	return nil
}

// dialUnix connects to the control socket path after checking its folder,
// and accepts the connection only if this user serves it (SO_PEERCRED).
func dialUnix(ctx context.Context, path string) (net.Conn, error) {
	if err := CheckRuntimeDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, err
	}
	if err := checkServer(c.(*net.UnixConn), path, os.Getuid()); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// checkServer refuses a control socket served by another user than uid.
func checkServer(c *net.UnixConn, path string, uid int) error {
	peer, err := unixPeerUID(c)
	if err != nil {
		return &UntrustedError{fmt.Sprintf("cannot tell who serves the control socket %s (%v): refusing to use it", path, err)}
	}
	if peer != uid {
		return &UntrustedError{fmt.Sprintf("the control socket %s is served by uid %d, not by you (uid %d): refusing to send it anything; stop that process or set XDG_RUNTIME_DIR to a folder of yours", path, peer, uid)}
	}
	return nil
}

// asUntrusted returns the *UntrustedError in err's chain, if any.
func asUntrusted(err error) (*UntrustedError, bool) {
	var u *UntrustedError
	ok := errors.As(err, &u)
	return u, ok
}
