package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/vkey-dev/vkey"
	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/internal/escape"
	"github.com/vkey-dev/vkey/keystore"
	"github.com/vkey-dev/vkey/presence"
)

// runOptions are the flags of `vkey run`.
type runOptions struct {
	transport      string
	link           string
	udpAddr        string
	udpRemote      bool
	presence       string
	state          string
	ephemeral      bool
	name           string
	keys           string
	tpmSpec        string
	attestation    string
	passkeys       string
	passphraseFile string
	verbose        bool
	vendorID       uint16
	productID      uint16
	readyFile      string
	uv             string
	epRPIDs        []string
	algorithms     string
	aaguid         string
	attestationCA  string
	profile        string
	maxCredentials int
	control        controlOptions
}

func newRunCommand() *cobra.Command {
	o := &runOptions{}
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Start a virtual security key in the foreground",
		Long: `Start a virtual FIDO2 security key and serve it until interrupted.

Transports: uhid (a real /dev/hidrawN that every FIDO2 client finds), pty (a
pseudo-terminal that libfido2 and python-fido2 open by path), udp (one HID
report per datagram, the convention of firmware simulators). "auto" uses uhid
when /dev/uhid is usable and a pty otherwise.

Presence (the touch): auto approves every request (CI), prompt asks on this
terminal, touch waits for "vkey touch" from another terminal, desktop asks
through the desktop's notifications (session D-Bus), deny refuses.
In every mode SIGUSR1 approves the pending request.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.transport, "transport", "auto", "auto, uhid, pty or udp")
	f.StringVar(&o.link, "link", "", "with --transport pty: keep a symlink to the pty at this path (only a pty symlink already there is replaced)")
	f.StringVar(&o.udpAddr, "udp-addr", "127.0.0.1:8111", "with --transport udp: the address to listen on (loopback: every local user can use the key)")
	f.BoolVar(&o.udpRemote, "udp-allow-remote", false, "with --transport udp: allow a --udp-addr that is not loopback (every host that reaches it can use the key)")
	f.StringVar(&o.presence, "presence", "touch", "auto, prompt, touch, desktop or deny")
	f.StringVar(&o.state, "state", "", "state folder (default $XDG_DATA_HOME/vkey/NAME)")
	f.BoolVar(&o.ephemeral, "ephemeral", false, "keep all state in memory (forgotten on exit)")
	f.StringVar(&o.name, "name", vkey.DefaultName, "name of this key (device name, state and control socket)")
	f.StringVar(&o.keys, "keys", "auto", "where device-bound keys live: auto, tpm or software")
	f.StringVar(&o.tpmSpec, "tpm", "", "TPM to use: /dev/tpmrm0 (default) or swtpm:SOCKET")
	f.StringVar(&o.attestation, "attestation", "packed", "attestation format: none, packed-self, packed or tpm")
	f.StringVar(&o.passkeys, "passkeys", "device-bound", "kind of new credentials: device-bound or syncable")
	f.StringVar(&o.passphraseFile, "passphrase-file", "", "protect the state with the passphrase in this file")
	f.BoolVarP(&o.verbose, "verbose", "v", false, "log protocol events")
	f.Uint16Var(&o.vendorID, "vendor-id", 0x1209, "USB vendor ID of the uhid device")
	f.Uint16Var(&o.productID, "product-id", 0x7679, "USB product ID of the uhid device")
	f.StringVar(&o.readyFile, "ready-file", "", "write the key's location to this file once it is ready (for scripts)")
	f.StringVar(&o.uv, "uv", "none", "built-in user verification: none, or builtin (its outcome set with `vkey uv` or the control API)")
	f.StringArrayVar(&o.epRPIDs, "ep-rp-id", nil, "an RP ID given vendor-facilitated enterprise attestation (repeatable; needs `vkey config enterprise-attestation on`)")
	f.StringVar(&o.algorithms, "algorithms", "", "credential algorithms to offer, in order: a comma-separated list of ES256, EdDSA, ES384, ES512, RS256, PS256 (default all of them, in that order)")
	f.StringVar(&o.aaguid, "aaguid", "", "the AAGUID the key reports, as a UUID (default vkey's own, 766b6579-2d76-6972-7475-616c2d6b6579)")
	f.StringVar(&o.attestationCA, "attestation-ca", "", "CERT,KEY: PEM files of a CA that issues the packed attestation certificates (default this installation's own CA)")
	f.StringVar(&o.profile, "profile", "", "stand in for a hardware key's getInfo and limits: "+strings.Join(ctap2.ProfileNames(), ", ")+" (keeps vkey's AAGUID and attestation unless --aaguid or --attestation-ca)")
	f.IntVar(&o.maxCredentials, "max-credentials", keystore.DefaultMaxDiscoverable, "how many discoverable credentials (passkeys) the key holds; 0 for no limit")
	o.control.addFlags(f)
	return cmd
}

func (o *runOptions) validate() error {
	switch o.transport {
	case "auto", "uhid", "pty", "udp":
	default:
		return usageError("unknown transport %q (want auto, uhid, pty or udp)", o.transport)
	}
	switch o.keys {
	case "auto", "tpm", "software":
	default:
		return usageError("unknown --keys %q (want auto, tpm or software)", o.keys)
	}
	if o.uv != "none" && o.uv != "builtin" {
		return usageError("unknown --uv %q (want none or builtin)", o.uv)
	}
	if o.transport == "udp" {
		if err := vkey.CheckUDPAddr(o.udpAddr, o.udpRemote); err != nil {
			return withExitCode(exitUsage, err)
		}
	}
	if o.ephemeral && o.state != "" {
		return usageError("--state and --ephemeral exclude each other")
	}
	if o.maxCredentials < 0 {
		return usageError("--max-credentials must be 0 (no limit) or more, got %d", o.maxCredentials)
	}
	if o.name == "" || strings.ContainsAny(o.name, "/\x00") {
		return usageError("--name must be a non-empty name without slashes")
	}
	if _, err := parseAlgorithms(o.algorithms); err != nil {
		return err
	}
	if _, err := parseAAGUID(o.aaguid); err != nil {
		return err
	}
	if _, ok := ctap2.LookupProfile(o.profile); o.profile != "" && !ok {
		return usageError("unknown --profile %q (want one of %s)", o.profile, strings.Join(ctap2.ProfileNames(), ", "))
	}
	return nil
}

// maxCredentials turns --max-credentials into vkey.Options.MaxCredentials:
// 0 on the command line means no limit.
func maxCredentials(n int) int {
	if n == 0 {
		return keystore.Unlimited
	}
	return n
}

// stateOptions are the options of the state folder: memory with
// --ephemeral, else --state or the default folder of --name.
func stateOptions(name, state string, ephemeral bool, passphraseFile string) (vkey.Options, error) {
	o := vkey.Options{Name: name, StateDir: state}
	if !ephemeral && state == "" {
		dir, err := vkey.DefaultStateDir(name)
		if err != nil {
			return o, err
		}
		o.StateDir = dir
	}
	if passphraseFile != "" {
		o.Passphrase = func(context.Context) ([]byte, error) {
			b, err := os.ReadFile(passphraseFile)
			if err != nil {
				return nil, fmt.Errorf("reading --passphrase-file: %w", err)
			}
			return []byte(strings.TrimRight(string(b), "\r\n")), nil
		}
	}
	return o, nil
}

// parseAlgorithms reads --algorithms (vkey.ParseAlgorithms).
func parseAlgorithms(list string) ([]keystore.Algorithm, error) {
	algs, err := vkey.ParseAlgorithms(list)
	var bad *vkey.AlgorithmListError
	if errors.As(err, &bad) && !bad.Twice {
		return nil, usageError("%v in --algorithms (want a comma-separated list of ES256, EdDSA, ES384, ES512, RS256, PS256)", err)
	}
	if err != nil {
		return nil, usageError("%v in --algorithms: list each algorithm once", err)
	}
	return algs, nil
}

// parseAAGUID reads --aaguid (vkey.ParseAAGUID).
func parseAAGUID(s string) ([16]byte, error) {
	a, err := vkey.ParseAAGUID(s)
	if err != nil {
		return a, usageError("--aaguid %v", err)
	}
	return a, nil
}

// readAttestationCA reads --attestation-ca CERT,KEY (vkey.LoadAttestationCA).
// Empty means the installation's own CA.
func readAttestationCA(spec string) (*ctap2.AttestationCA, error) {
	if spec == "" {
		return nil, nil
	}
	certFile, keyFile, ok := strings.Cut(spec, ",")
	if !ok || certFile == "" || keyFile == "" {
		return nil, usageError("--attestation-ca wants CERT,KEY (two PEM files), not %q", spec)
	}
	ca, err := vkey.LoadAttestationCA(certFile, keyFile)
	if err != nil {
		return nil, usageError("--attestation-ca: %v", err)
	}
	return ca, nil
}

func (o *runOptions) run(ctx context.Context, stdout, stderr io.Writer) error {
	if err := o.validate(); err != nil {
		return err
	}
	desktop := o.presence == "desktop" // a Touch broker that also asks the desktop
	modeName := o.presence
	if desktop {
		modeName = string(presence.Touch)
	}
	mode, err := presence.ParseMode(modeName)
	if err != nil {
		return withExitCode(exitUsage, err)
	}
	attCA, err := readAttestationCA(o.attestationCA)
	if err != nil {
		return err
	}
	level := slog.LevelWarn
	if o.verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	// Listening first: a second key of the same name stops before it
	// creates a device.
	controlListeners, err := o.control.listen(o.name, stdout)
	if err != nil {
		return err
	}
	opts, err := stateOptions(o.name, o.state, o.ephemeral, o.passphraseFile)
	if err != nil {
		for _, l := range controlListeners {
			l.Close()
		}
		return err
	}
	opts.Keys, opts.TPM = vkey.Keys(o.keys), o.tpmSpec
	opts.MaxCredentials = maxCredentials(o.maxCredentials)
	opts.Presence, opts.Terminal = mode, openTerminal(mode)
	opts.BuiltInUV = o.uv == "builtin"
	opts.Attestation, opts.Passkeys = ctap2.AttestationFormat(o.attestation), ctap2.PasskeyKind(o.passkeys)
	opts.EnterpriseRPIDs = o.epRPIDs
	opts.Algorithms, _ = parseAlgorithms(o.algorithms) // checked by validate
	opts.AAGUID, _ = parseAAGUID(o.aaguid)
	if p, ok := ctap2.LookupProfile(o.profile); ok { // none without --profile
		opts.Profile = &p
	}
	opts.AttestationCA = attCA
	opts.Transport, opts.PTYLink = vkey.Transport(o.transport), o.link
	opts.UDPAddr, opts.UDPAllowRemote = o.udpAddr, o.udpRemote
	opts.VendorID, opts.ProductID = o.vendorID, o.productID
	opts.ControlListeners = controlListeners
	opts.Logger = logger
	opts.Notify = func(note string) { fmt.Fprintf(stderr, "vkey: %s\n", note) }
	opts.Desktop = desktop
	var running atomic.Pointer[vkey.Key]
	opts.Observer = ctap2.ObserverFunc(func(_ context.Context, e ctap2.Event) {
		if e, ok := e.(ctap2.PresenceRequested); ok {
			if k := running.Load(); k != nil {
				// The mode now, not at start: the control API switches it.
				announceTouch(stderr, k.Presence.Mode(), e.Request)
			}
		}
	})
	k, err := vkey.New(ctx, opts)
	var badOption *vkey.OptionError
	if errors.As(err, &badOption) {
		return withExitCode(exitUsage, err)
	}
	if err != nil {
		return err
	}
	running.Store(k)
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	go func() {
		for range usr1 {
			k.Presence.Approve()
		}
	}()

	shown := string(mode)
	if k.Desktop != nil {
		shown = "desktop"
	}
	fmt.Fprintf(stdout, "vkey: %s ready on %s (presence: %s)\n", o.name, k.Where, shown)
	if o.readyFile != "" {
		if err := os.WriteFile(o.readyFile, []byte(k.Where+"\n"), 0o600); err != nil {
			k.Close()
			return fmt.Errorf("writing --ready-file: %w", err)
		}
	}
	err = k.Wait()
	if ctx.Err() != nil {
		fmt.Fprintf(stderr, "vkey: %s stopped\n", o.name)
		return nil
	}
	return err
}

// announceTouch prints the line that asks for `vkey touch` when mode waits
// for it; what comes from the request is escaped.
func announceTouch(w io.Writer, mode presence.Mode, req ctap2.PresenceRequest) {
	if mode == presence.Touch {
		fmt.Fprintf(w, "vkey: touch requested (%s%s): run `vkey touch` or `vkey touch --deny`\n", escape.Terminal(req.Command), forRP(req.RPID))
	}
}

func forRP(rpID string) string {
	if rpID == "" {
		return ""
	}
	return " for " + escape.Terminal(rpID)
}

// openTerminal returns the controlling terminal for --presence prompt.
func openTerminal(mode presence.Mode) io.ReadWriter {
	if mode != presence.Prompt {
		return nil
	}
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil
	}
	return tty
}
