package vkey

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/ctap2/client"
	"github.com/vkey-dev/vkey/hid"
	"github.com/vkey-dev/vkey/internal/control"
	"github.com/vkey-dev/vkey/keystore"
	"github.com/vkey-dev/vkey/presence"
	"github.com/vkey-dev/vkey/tpm"
)

// Transport is how clients reach a key.
type Transport string

// Transports of Options.Transport.
const (
	// Pipe serves only in-process clients, through Key.Dial.
	Pipe Transport = "pipe"
	// UHID creates a /dev/hidrawN every FIDO2 client finds (Linux uhid).
	UHID Transport = "uhid"
	// PTY serves a pseudo-terminal libfido2 and python-fido2 open by path.
	PTY Transport = "pty"
	// UDP serves one HID report per datagram, the convention of firmware
	// simulators.
	UDP Transport = "udp"
	// Auto is UHID when /dev/uhid is usable, PTY otherwise.
	Auto Transport = "auto"
)

// Keys says where device-bound keys live.
type Keys string

// Key sources of Options.Keys.
const (
	SoftwareKeys Keys = "software" // software keys marked device-bound
	TPMKeys      Keys = "tpm"      // the TPM, or fail
	AutoKeys     Keys = "auto"     // the TPM when one is usable
)

// DefaultName is the name of a key whose Options.Name is empty.
const DefaultName = "vkey"

// Default USB IDs of a uhid key (pid.codes test IDs).
const (
	DefaultVendorID  = 0x1209
	DefaultProductID = 0x7679
)

// Options configure a key. The zero value is an ephemeral in-memory key
// with software keys, packed attestation and automatic presence, served
// to in-process clients (Key.Dial).
type Options struct {
	// Name names the device, the default state folder and the control
	// socket (default DefaultName).
	Name string

	// StateDir is the folder of persistent state; empty keeps everything
	// in memory (forgotten when the key stops). DefaultStateDir(Name) is
	// where `vkey run` keeps it.
	StateDir string
	// Store, if set, is used instead of StateDir (and not closed).
	Store keystore.Store
	// Passphrase, if set, protects StateDir's master key; otherwise the
	// TPM seals it, or the session keyring holds it.
	Passphrase func(ctx context.Context) ([]byte, error)
	// MaxCredentials is how many discoverable credentials (passkeys) the
	// key holds: keystore.DefaultMaxDiscoverable if 0, no limit if
	// keystore.Unlimited.
	MaxCredentials int

	// PIN, if not empty, is set on a key that has none yet (CTAP 2.1
	// clientPIN setPIN).
	PIN string

	// Keys says where device-bound keys live (default SoftwareKeys).
	Keys Keys
	// DeviceKeys, if set, makes device-bound keys instead of what Keys
	// selects (a TPM the caller opened: tpm.TPM.KeyProvider()). U2F
	// registrations use it too: with TPM keys each one is a TPM key kept
	// as a stored credential that its 32-byte key handle names.
	DeviceKeys keystore.KeyProvider
	// TPM is the TPM to use: "" for /dev/tpmrm0, or swtpm:SOCKET.
	TPM string

	// Presence is how touches are answered (default presence.Auto).
	Presence presence.Mode
	// PresenceTimeout bounds each wait for a touch (default
	// presence.DefaultTimeout).
	PresenceTimeout time.Duration
	// Terminal is where presence.Prompt asks.
	Terminal io.ReadWriter
	// Desktop also asks for each touch through the desktop's notifications
	// (session D-Bus), with Approve and Deny buttons; without a desktop,
	// Notify says so and Key.Desktop is nil. Use it with presence.Touch.
	Desktop bool
	// BuiltInUV gives the key a built-in user verification method whose
	// outcome Key.UV sets.
	BuiltInUV bool

	// Attestation is the makeCredential attestation format (default packed).
	Attestation ctap2.AttestationFormat
	// Passkeys is the kind of new credentials (default device-bound).
	Passkeys ctap2.PasskeyKind
	// EnterpriseRPIDs are given vendor-facilitated enterprise attestation.
	EnterpriseRPIDs []string
	// AttestationCA, when set, issues the packed attestation certificates
	// instead of the installation's own CA.
	AttestationCA *ctap2.AttestationCA
	// AAGUID identifies the authenticator model (default
	// ctap2.DefaultAAGUID, or the Profile's).
	AAGUID [16]byte
	// Algorithms are the credential algorithms offered, in order of
	// preference (default ctap2.DefaultAlgorithms, or the Profile's).
	Algorithms []keystore.Algorithm
	// Profile, when set, gives the key the shape of a hardware key
	// (ctap2.LookupProfile).
	Profile *ctap2.Profile

	// Transport is how clients reach the key (default Pipe).
	Transport Transport
	// PTYLink, with PTY, keeps a symlink to the pty at this path.
	PTYLink string
	// UDPAddr, with UDP, is the address to listen on (default
	// 127.0.0.1:8111). An address other hosts reach is refused unless
	// UDPAllowRemote.
	UDPAddr        string
	UDPAllowRemote bool
	// VendorID and ProductID are the USB IDs of a UHID device (default
	// DefaultVendorID, DefaultProductID).
	VendorID, ProductID uint16

	// ControlSocket, if set, serves the control API on this unix socket
	// (owner-only); DefaultControlSocket(Name) is where `vkey run` puts it.
	ControlSocket string
	// ControlListeners are more listeners to serve the control API on;
	// the key closes them when it stops.
	ControlListeners []net.Listener

	// Observer is told what the authenticator does, after the key's own
	// observers (control API events, UPNEEDED keepalives, the log).
	Observer ctap2.Observer
	// Logger receives diagnostics and, at debug level, every event
	// (default: discard).
	Logger *slog.Logger
	// Notify receives one-line notes for people (the TPM is not used, the
	// state's master key source, a pty instead of uhid); nil drops them.
	Notify func(note string)
}

// Key is a running virtual security key.
type Key struct {
	// Name is the key's name.
	Name string
	// Authenticator is the CTAP2 authenticator.
	Authenticator *ctap2.Authenticator
	// Store is its memory.
	Store keystore.Store
	// Presence answers touches: Approve and Deny answer a pending one.
	Presence *presence.Broker
	// UV is the built-in user verification, nil without Options.BuiltInUV.
	UV *presence.Verifier
	// Desktop asks for touches through the desktop's notifications, nil
	// without Options.Desktop or without a desktop.
	Desktop *presence.Desktop
	// Address is where hid.Dial finds the key: a hidraw or pty path (the
	// PTYLink if any), or "udp:HOST:PORT"; empty for Pipe.
	Address string
	// Where says, for people, where the key is.
	Where string
	// StateDir is the state folder, empty in memory.
	StateDir string

	device  *hid.Device
	ctx     context.Context
	cancel  context.CancelFunc
	mu      sync.Mutex
	stopped bool // no more Dial
	done    chan struct{}
	err     error
	dials   sync.WaitGroup
}

// New assembles a key from opts and serves it until ctx is cancelled (or
// Close is called): Wait then returns once everything is closed.
func New(ctx context.Context, opts Options) (_ *Key, err error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	var cleanup []func()
	defer func() {
		if err != nil {
			for i := len(cleanup) - 1; i >= 0; i-- {
				cleanup[i]()
			}
		}
	}()
	for _, l := range opts.ControlListeners {
		cleanup = append(cleanup, func() { l.Close() })
	}
	lns := opts.ControlListeners
	if opts.ControlSocket != "" {
		ln, err := control.ListenUnix(opts.ControlSocket)
		if errors.Is(err, control.ErrSocketInUse) {
			return nil, fmt.Errorf("a vkey is already running with the control socket %s: give this one another name", opts.ControlSocket)
		}
		if err != nil {
			return nil, err
		}
		cleanup = append(cleanup, func() { ln.Close() })
		lns = append(lns, ln)
	}

	k := &Key{Name: opts.Name, done: make(chan struct{})}
	st, err := openState(ctx, &opts)
	if err != nil {
		return nil, err
	}
	cleanup = append(cleanup, st.close)
	k.Store, k.StateDir = st.store, st.dir

	k.Presence = presence.New(presence.Options{Mode: opts.Presence, Timeout: opts.PresenceTimeout, Terminal: opts.Terminal})
	var verifier ctap2.UserVerifier
	if opts.BuiltInUV {
		k.UV = presence.NewVerifier()
		verifier = k.UV
	}
	hub := control.NewHub()
	observers := ctap2.Observers{Keepalive, hub, LogObserver(opts.Logger), opts.Observer}
	if opts.Desktop {
		if k.Desktop = openDesktop(ctx, k.Presence, opts.Notify); k.Desktop != nil {
			cleanup = append(cleanup, func() { k.Desktop.Close() })
			observers = append(observers, desktopObserver{k.Desktop, opts.Notify})
		}
	}
	deviceKeys := st.deviceKeys
	if opts.DeviceKeys != nil {
		deviceKeys = opts.DeviceKeys
	}
	a, err := ctap2.New(ctap2.Options{
		Store:           k.Store,
		DeviceKeys:      deviceKeys,
		Presence:        k.Presence,
		UserVerifier:    verifier,
		Attestation:     opts.Attestation,
		Passkeys:        opts.Passkeys,
		EnterpriseRPIDs: opts.EnterpriseRPIDs,
		AttestationCA:   opts.AttestationCA,
		AAGUID:          opts.AAGUID,
		Algorithms:      opts.Algorithms,
		Profile:         opts.Profile,
		Logger:          opts.Logger,
		Observer:        observers,
	})
	if err != nil {
		return nil, &OptionError{err}
	}
	k.Authenticator = a
	if err := setPIN(ctx, a, opts.PIN); err != nil {
		return nil, err
	}
	k.device = hid.NewDevice(Handler(a), hid.DeviceConfig{MaxMsgSize: a.MaxMsgSize(), Logger: opts.Logger})

	port, err := openTransport(ctx, &opts)
	if err != nil {
		return nil, err
	}
	k.Address, k.Where = port.address, port.where

	k.ctx, k.cancel = context.WithCancel(ctx)
	ctx = k.ctx
	srv := control.New(control.Config{Name: opts.Name, Transport: k.Address, Authenticator: a, Presence: k.Presence,
		UV: k.UV, Hub: hub, Logger: opts.Logger})
	var wg sync.WaitGroup
	for _, l := range lns {
		wg.Go(func() {
			if err := srv.Serve(ctx, l); err != nil {
				opts.Logger.Error("control API stopped", "err", err)
			}
		})
	}
	go func() {
		var err error
		switch p := port.closer.(type) {
		case hid.Listener:
			err = k.device.ServeListener(ctx, p)
		case hid.Port:
			err = k.device.Serve(ctx, p)
		default:
			<-ctx.Done()
		}
		k.cancel()
		if port.closer != nil {
			port.closer.Close()
		}
		wg.Wait()
		if k.Desktop != nil {
			k.Desktop.Close()
		}
		k.mu.Lock()
		k.stopped = true
		k.mu.Unlock()
		k.dials.Wait()
		st.close()
		if err != nil && !errors.Is(err, context.Canceled) {
			k.err = fmt.Errorf("serving the key: %w", err)
		}
		close(k.done)
	}()
	return k, nil
}

// Dial connects an in-process CTAPHID client to the key, whatever its
// transport: a pipe that the key's device serves until the client closes it
// or the key stops.
func (k *Key) Dial(ctx context.Context) (*hid.Client, error) {
	host, dev := hid.Pipe()
	k.mu.Lock()
	if k.stopped {
		k.mu.Unlock()
		return nil, errors.New("vkey: the key has stopped")
	}
	k.dials.Go(func() { _ = k.device.Serve(k.ctx, dev) })
	k.mu.Unlock()
	return hid.NewClient(ctx, host)
}

// setPIN sets pin on a when it is not empty and a has no PIN yet.
func setPIN(ctx context.Context, a *ctap2.Authenticator, pin string) error {
	if pin == "" {
		return nil
	}
	info, err := a.Info()
	if err != nil {
		return err
	}
	if info.Options["clientPin"] {
		return nil
	}
	if err := client.New(client.Direct{A: a}).SetPIN(ctx, 2, pin); err != nil {
		return fmt.Errorf("setting the PIN: %w", err)
	}
	return nil
}

// Direct is the authenticator as a client.Transport called in-process,
// without CTAPHID framing: the fastest way for a Go client (Dial goes
// through CTAPHID as a host would).
func (k *Key) Direct() client.Transport { return client.Direct{A: k.Authenticator} }

// SetPresence sets how touches are answered from now on: true approves
// every request at once, false refuses them (presence.Auto or
// presence.Deny).
func (k *Key) SetPresence(approve bool) {
	if approve {
		k.Presence.SetMode(presence.Auto)
	} else {
		k.Presence.SetMode(presence.Deny)
	}
}

// SetUV sets the outcome of built-in user verification; it reports false
// when the key has none (Options.BuiltInUV).
func (k *Key) SetUV(verified bool) bool {
	if k.UV == nil {
		return false
	}
	k.UV.SetVerified(verified)
	return true
}

// Close stops the key and waits until it has stopped.
func (k *Key) Close() error {
	k.cancel()
	return k.Wait()
}

// Wait waits until the key has stopped (its context was cancelled, Close
// was called, or its transport failed) and returns why, nil for a stop
// that was asked for.
func (k *Key) Wait() error {
	<-k.done
	return k.err
}

// Done is closed once the key has stopped.
func (k *Key) Done() <-chan struct{} { return k.done }

func (o *Options) defaults() error {
	if o.Name == "" {
		o.Name = DefaultName
	}
	if strings.ContainsAny(o.Name, "/\x00") {
		return fmt.Errorf("vkey: the name %q contains a slash or NUL", o.Name)
	}
	if o.Keys == "" {
		o.Keys = SoftwareKeys
	}
	switch o.Keys {
	case SoftwareKeys, TPMKeys, AutoKeys:
	default:
		return fmt.Errorf("vkey: unknown keys %q (want auto, tpm or software)", o.Keys)
	}
	if o.Presence == "" {
		o.Presence = presence.Auto
	}
	if _, err := presence.ParseMode(string(o.Presence)); err != nil {
		return err
	}
	if o.Transport == "" {
		o.Transport = Pipe
	}
	switch o.Transport {
	case Pipe, UHID, PTY, UDP, Auto:
	default:
		return fmt.Errorf("vkey: unknown transport %q (want auto, uhid, pty, udp or pipe)", o.Transport)
	}
	if o.UDPAddr == "" {
		o.UDPAddr = "127.0.0.1:8111"
	}
	if o.Transport == UDP {
		if err := CheckUDPAddr(o.UDPAddr, o.UDPAllowRemote); err != nil {
			return err
		}
	}
	if o.VendorID == 0 {
		o.VendorID = DefaultVendorID
	}
	if o.ProductID == 0 {
		o.ProductID = DefaultProductID
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Notify == nil {
		o.Notify = func(string) {}
	}
	return nil
}

// OptionError is an error New returns for options the authenticator
// refuses (an unknown attestation format or passkey kind).
type OptionError struct{ Err error }

func (e *OptionError) Error() string { return e.Err.Error() }

// Unwrap returns the authenticator's error.
func (e *OptionError) Unwrap() error { return e.Err }

// state is what openState opened.
type state struct {
	store      keystore.Store
	dir        string
	deviceKeys keystore.KeyProvider
	close      func()
}

// OpenState opens the TPM (with Keys auto or tpm) and the store of opts,
// as New does; close releases both. `vkey backup` uses it on the state
// folder of a key that is not running.
func OpenState(ctx context.Context, opts Options) (keystore.Store, func(), error) {
	if err := opts.defaults(); err != nil {
		return nil, nil, err
	}
	st, err := openState(ctx, &opts)
	if err != nil {
		return nil, nil, err
	}
	return st.store, st.close, nil
}

func openState(ctx context.Context, o *Options) (*state, error) {
	st := &state{dir: o.StateDir}
	t, err := openTPM(o)
	if err != nil {
		return nil, err
	}
	var sealer keystore.Sealer
	var closers []func()
	if t != nil {
		st.deviceKeys, sealer = t.KeyProvider(), t.Sealer()
		closers = append(closers, func() { t.Close() })
	}
	var once sync.Once
	st.close = func() {
		once.Do(func() {
			for i := len(closers) - 1; i >= 0; i-- {
				closers[i]()
			}
		})
	}
	switch {
	case o.Store != nil:
		st.store = o.Store
	case o.StateDir == "":
		st.store = keystore.NewMemory(o.MaxCredentials)
	default:
		store, err := openFileStore(ctx, o, sealer)
		if err != nil {
			st.close()
			return nil, err
		}
		st.store = store
		closers = append(closers, func() { store.Close() })
	}
	return st, nil
}

// openTPM opens the TPM for TPMKeys, or for AutoKeys when one is usable.
func openTPM(o *Options) (*tpm.TPM, error) {
	if o.Keys == SoftwareKeys {
		return nil, nil
	}
	t, err := tpm.Open(o.TPM)
	if err == nil {
		return t, nil
	}
	if o.Keys == TPMKeys {
		return nil, fmt.Errorf("%w; use --keys software, or a software TPM with --tpm swtpm:SOCKET", err)
	}
	if !errors.Is(err, tpm.ErrNoTPM) {
		o.Notify(fmt.Sprintf("not using the TPM (%v); device-bound keys are software keys", err))
	}
	return nil, nil
}

// openFileStore unlocks and opens the state folder. The folder's lock is
// taken before any master key is read or chosen, so a second start on a
// new folder cannot overwrite the first's key.
func openFileStore(ctx context.Context, o *Options, sealer keystore.Sealer) (keystore.Store, error) {
	dir := o.StateDir
	prefs := keystore.MasterKeyPrefs{Sealer: sealer, Keyring: true, Passphrase: o.Passphrase}
	kctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	store, mk, err := keystore.OpenState(kctx, dir, prefs, keystore.FileOptions{MaxDiscoverable: o.MaxCredentials})
	var corrupt *keystore.CorruptError
	var locked *keystore.LockedError
	switch {
	case errors.Is(err, keystore.ErrWrongPassphrase):
		return nil, fmt.Errorf("unlocking the state in %s: %w; check the file given with --passphrase-file", dir, err)
	case errors.As(err, &corrupt):
		return nil, fmt.Errorf("%w; restore it from a copy, or start a fresh key with another --state (its passkeys would be lost)", err)
	case errors.As(err, &locked):
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("unlocking the state in %s: %w", dir, err)
	}
	o.Notify(fmt.Sprintf("state in %s, encrypted with a master key from the %s", dir, mk.Source.Name()))
	limit := o.MaxCredentials
	if limit == 0 {
		limit = keystore.DefaultMaxDiscoverable
	}
	if n, err := store.DiscoverableCount(); err == nil && limit > 0 && n > limit {
		o.Notify(fmt.Sprintf("the state holds %d passkeys, more than --max-credentials %d: new passkeys are refused until some are deleted (`vkey creds delete`) or the limit is raised", n, limit))
	}
	return store, nil
}

// port is an opened transport.
type port struct {
	closer  io.Closer // a hid.Port, a hid.Listener, or nil for Pipe
	address string
	where   string
}

// openTransport creates the device's port and says where clients find it.
func openTransport(ctx context.Context, o *Options) (*port, error) {
	transport := o.Transport
	if transport == Auto {
		if err := UHIDUsable(); err != nil {
			o.Notify(fmt.Sprintf("%v; serving a pty instead (run `vkey doctor` for the fix)", err))
			transport = PTY
		} else {
			transport = UHID
		}
	}
	switch transport {
	case UHID:
		p, err := hid.OpenUHID(hid.UHIDConfig{Name: o.Name, VendorID: o.VendorID, ProductID: o.ProductID, Serial: o.Name})
		if err != nil {
			return nil, err
		}
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		path, err := p.HidrawPath(wctx)
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("the uhid device was created but no hidraw node appeared: %w (is the hid-generic driver available?)", err)
		}
		return &port{p, path, path}, nil
	case PTY:
		p, err := hid.OpenPTY()
		if err != nil {
			return nil, err
		}
		if o.PTYLink != "" {
			if err := p.Link(o.PTYLink); err != nil {
				p.Close()
				return nil, err
			}
			return &port{p, o.PTYLink, fmt.Sprintf("%s (-> %s)", o.PTYLink, p.Path())}, nil
		}
		return &port{p, p.Path(), p.Path()}, nil
	case UDP:
		p, err := hid.ListenUDP(o.UDPAddr)
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("UDP address %s is already in use (another vkey, or a firmware simulator?): stop it, or choose another address with --udp-addr", o.UDPAddr)
		}
		if err != nil {
			return nil, err
		}
		addr := "udp:" + p.Addr().String()
		return &port{p, addr, addr}, nil
	}
	return &port{where: "an in-process pipe"}, nil
}

// CheckUDPAddr refuses a UDP address other hosts could reach unless
// allowRemote says so: whoever reaches the port can use the key.
func CheckUDPAddr(addr string, allowRemote bool) error {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return fmt.Errorf("--udp-addr %q: %w", addr, err)
	}
	if allowRemote || ua.IP.IsLoopback() {
		return nil
	}
	return fmt.Errorf("--udp-addr %s is not a loopback address, so other hosts could use this key: listen on 127.0.0.1, or add --udp-allow-remote if that is what you want", addr)
}

// UHIDUsable reports why /dev/uhid cannot be used, or nil.
func UHIDUsable() error {
	f, err := os.OpenFile("/dev/uhid", os.O_RDWR, 0)
	switch {
	case err == nil:
		f.Close()
		return nil
	case errors.Is(err, os.ErrNotExist):
		return errors.New("/dev/uhid does not exist (the uhid kernel module is not loaded: sudo modprobe uhid)")
	case errors.Is(err, os.ErrPermission):
		return errors.New("no permission to open /dev/uhid (install the udev rules: vkey udev-rules | sudo tee /etc/udev/rules.d/70-vkey.rules)")
	}
	return fmt.Errorf("/dev/uhid cannot be opened: %w", err)
}

// DefaultStateDir is where `vkey run` keeps the state of key name:
// $XDG_DATA_HOME/vkey/NAME (~/.local/share/vkey/NAME).
func DefaultStateDir(name string) (string, error) {
	base := os.Getenv("XDG_DATA_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("finding the state folder: %w (set --state DIR or XDG_DATA_HOME)", err)
		}
		base = filepath.Join(home, ".local", "share")
	}
	return filepath.Join(base, "vkey", name), nil
}

// RuntimeDir is where running keys put their control sockets:
// $XDG_RUNTIME_DIR/vkey, or a per-user folder under the temp dir.
func RuntimeDir() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "vkey")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("vkey-%d", os.Getuid()))
}

// DefaultControlSocket is the control socket of the running key name.
func DefaultControlSocket(name string) string { return filepath.Join(RuntimeDir(), name+".sock") }
