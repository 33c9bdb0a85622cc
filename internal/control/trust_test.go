package control

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRuntimeDirTrust: a control socket folder is used only when it is
// this user's alone (issue 11, point 5).
func TestRuntimeDirTrust(t *testing.T) {
	base := t.TempDir()
	mk := func(name string, mode os.FileMode) string {
		d := filepath.Join(base, name)
		if err := os.Mkdir(d, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, mode); err != nil {
			t.Fatal(err)
		}
		return d
	}
	good := mk("good", 0o700)
	if err := CheckRuntimeDir(good); err != nil {
		t.Errorf("own 0700 folder: %v", err)
	}
	if err := CheckRuntimeDir(filepath.Join(base, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing folder: %v, want ErrNotExist", err)
	}
	loose := mk("loose", 0o777)
	wantUntrusted(t, CheckRuntimeDir(loose), "chmod 700 "+loose)
	link := filepath.Join(base, "link")
	if err := os.Symlink(good, link); err != nil {
		t.Fatal(err)
	}
	wantUntrusted(t, CheckRuntimeDir(link), "not a folder")

	if os.Getuid() == 0 { // only root can give a folder away
		planted := mk("planted", 0o777)
		if err := os.Chown(planted, 4242, 4242); err != nil {
			t.Fatal(err)
		}
		wantUntrusted(t, CheckRuntimeDir(planted), "belongs to uid 4242")
		// vkey run says the same, and touches nothing.
		_, err := ListenUnix(filepath.Join(planted, "vkey.sock"))
		wantUntrusted(t, err, "belongs to uid 4242")
		if fi, _ := os.Stat(planted); fi.Mode().Perm() != 0o777 {
			t.Errorf("ListenUnix changed the planted folder's mode to %v", fi.Mode())
		}
		// A client refuses it before connecting.
		err = NewUnixClient(filepath.Join(planted, "vkey.sock")).Do(context.Background(), "GET", "/info", nil, nil)
		wantUntrusted(t, err, "belongs to uid 4242")
	}
}

// TestClientChecksServerUID: a client refuses a socket another user
// serves (SO_PEERCRED).
func TestClientChecksServerUID(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "k.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := checkServer(c.(*net.UnixConn), path, os.Getuid()); err != nil {
		t.Errorf("own server: %v", err)
	}
	wantUntrusted(t, checkServer(c.(*net.UnixConn), path, os.Getuid()+1), "is served by uid")
}

func wantUntrusted(t *testing.T, err error, want string) {
	t.Helper()
	var u *UntrustedError
	if !errors.As(err, &u) || !strings.Contains(err.Error(), want) {
		t.Errorf("got %v, want an UntrustedError saying %q", err, want)
	}
}
