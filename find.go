package vkey

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/vkey-dev/vkey/hid"
	"github.com/vkey-dev/vkey/internal/control"
)

// This file finds keys to talk to: running vkeys through their control
// sockets in RuntimeDir, and FIDO hidraw devices.

// RunningKey is a `vkey run` found through its control socket.
type RunningKey struct {
	Name      string `json:"name"`
	Transport string `json:"transport"` // where it is: what hid.Dial opens
	PID       int    `json:"pid"`
	Presence  string `json:"presence"`
	Socket    string `json:"socket"` // its control socket
}

// RunningKeys asks every control socket in RuntimeDir who is there, in
// the order of their paths. It fails when the folder, or a socket in it,
// may belong to another user (a planted /tmp/vkey-UID would receive PINs):
// the error says what to do.
func RunningKeys(ctx context.Context) ([]RunningKey, error) {
	dir := RuntimeDir()
	if err := control.CheckRuntimeDir(dir); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	socks, _ := filepath.Glob(filepath.Join(dir, "*.sock"))
	sort.Strings(socks)
	var out []RunningKey
	for _, s := range socks {
		k, err := askKey(ctx, s, 2*time.Second)
		var untrusted *control.UntrustedError
		if errors.As(err, &untrusted) {
			return nil, err
		}
		if err == nil {
			out = append(out, k)
		}
	}
	return out, nil
}

// askKey asks the control socket sock who is there, within timeout (none
// if 0).
func askKey(ctx context.Context, sock string, timeout time.Duration) (RunningKey, error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	info, err := control.NewUnixClient(sock).Info(ctx)
	if err != nil {
		return RunningKey{}, err
	}
	return RunningKey{Name: info.Name, Transport: info.Transport, PID: info.PID, Presence: info.Presence, Socket: sock}, nil
}

// ErrNoDevice is FindDevice's and OnlyRunningKey's error when there is
// nothing to choose.
var ErrNoDevice = errors.New("no device")

// ChoiceError is FindDevice's and OnlyRunningKey's error when there are
// several keys to choose from.
type ChoiceError struct {
	// VKeys are the names of the running vkeys, when they are the choice.
	VKeys []string
	// Devices are the FIDO devices plugged in, when they are the choice.
	Devices []hid.FIDODevice
}

func (e *ChoiceError) Error() string {
	if len(e.VKeys) > 0 {
		return "several vkeys are running: " + strings.Join(e.VKeys, ", ")
	}
	return "several FIDO devices are plugged in"
}

// NotRunningError is FindDevice's error for the name of a vkey whose
// control socket does not answer.
type NotRunningError struct {
	Name, Socket string
	Err          error
}

func (e *NotRunningError) Error() string { return "no vkey named " + e.Name + " is running" }

// Unwrap returns why the socket did not answer.
func (e *NotRunningError) Unwrap() error { return e.Err }

// OnlyRunningKey is the one running vkey: ErrNoDevice without one, a
// *ChoiceError with several.
func OnlyRunningKey(ctx context.Context) (RunningKey, error) {
	keys, err := RunningKeys(ctx)
	if err != nil {
		return RunningKey{}, err
	}
	switch len(keys) {
	case 0:
		return RunningKey{}, ErrNoDevice
	case 1:
		return keys[0], nil
	}
	e := &ChoiceError{}
	for _, k := range keys {
		e.VKeys = append(e.VKeys, k.Name)
	}
	return RunningKey{}, e
}

// Device is a key to talk to.
type Device struct {
	// Addr is what hid.Dial opens.
	Addr string
	// ControlSocket is the control socket of the running vkey that serves
	// Addr, if one does (it can power cycle the key before a reset).
	ControlSocket string
}

// FindDevice resolves spec, as `vkey --device` does: a hidraw or pty path
// or udp:HOST:PORT is used as is; another word is the name of a running
// vkey (*NotRunningError if it does not answer); empty means the only
// running vkey, or else the only FIDO device (ErrNoDevice without one, a
// *ChoiceError with several).
func FindDevice(ctx context.Context, spec string) (Device, error) {
	switch {
	case strings.HasPrefix(spec, "udp:") || strings.Contains(spec, "/"):
		d := Device{Addr: spec}
		keys, err := RunningKeys(ctx)
		if err != nil {
			return Device{}, err
		}
		for _, k := range keys {
			if k.Transport == spec {
				d.ControlSocket = k.Socket
			}
		}
		return d, nil
	case spec != "":
		sock := DefaultControlSocket(spec)
		k, err := askKey(ctx, sock, 0)
		var untrusted *control.UntrustedError
		if errors.As(err, &untrusted) {
			return Device{}, err
		}
		if err != nil {
			return Device{}, &NotRunningError{Name: spec, Socket: sock, Err: err}
		}
		return Device{Addr: k.Transport, ControlSocket: sock}, nil
	}
	k, err := OnlyRunningKey(ctx)
	if err == nil {
		return Device{Addr: k.Transport, ControlSocket: k.Socket}, nil
	}
	if !errors.Is(err, ErrNoDevice) {
		return Device{}, err
	}
	switch devs := hid.FIDODevices(); len(devs) {
	case 0:
		return Device{}, ErrNoDevice
	case 1:
		return Device{Addr: devs[0].Path}, nil
	default:
		return Device{}, &ChoiceError{Devices: devs}
	}
}
