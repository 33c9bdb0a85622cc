package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/vkey-dev/vkey"
	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/ctap2/client"
	"github.com/vkey-dev/vkey/hid"
	"github.com/vkey-dev/vkey/internal/escape"
	"golang.org/x/term"
)

// The management commands speak CTAP2 to a key through ctap2/client over a
// hid connection, exactly as they would to a hardware key. This file holds
// what they share: choosing the device, reading PINs, printing, and turning
// CTAP errors into exit statuses.

// deviceOptions are the flags shared by the commands that talk to a key.
type deviceOptions struct {
	device  string
	timeout time.Duration
	json    bool
	pinFile string
}

func (d *deviceOptions) addFlags(cmd *cobra.Command, withPIN, withJSON bool) {
	f := cmd.Flags()
	f.StringVarP(&d.device, "device", "d", "", "the key: a hidraw or pty path, udp:HOST:PORT, or the name of a running vkey (default: the running vkey, or the only FIDO device)")
	f.DurationVar(&d.timeout, "timeout", 60*time.Second, "give up after this long (exit status 6)")
	if withJSON {
		f.BoolVar(&d.json, "json", false, "print JSON (field names documented in docs/cli.md)")
	}
	if withPIN {
		f.StringVar(&d.pinFile, "pin-file", "", "read the PIN from this file (or set VKEY_PIN); default: ask on the terminal")
	}
}

// resolve turns --device into a key (vkey.FindDevice), as the help of
// --device says; its errors are made for people.
func (d *deviceOptions) resolve(ctx context.Context) (vkey.Device, error) {
	t, err := vkey.FindDevice(ctx, d.device)
	var notRunning *vkey.NotRunningError
	var choice *vkey.ChoiceError
	switch {
	case errors.As(err, &notRunning):
		return t, withExitCode(exitNoDevice, fmt.Errorf("%w: no vkey named %q is running (no answer on %s)", vkey.ErrNoDevice, notRunning.Name, notRunning.Socket))
	case errors.As(err, &choice) && len(choice.VKeys) > 0:
		return t, usageError("%d vkeys are running (%s): choose one with --device NAME", len(choice.VKeys), strings.Join(choice.VKeys, ", "))
	case errors.As(err, &choice):
		return t, usageError("%d FIDO devices are plugged in: choose one with --device PATH (see `vkey devices`)", len(choice.Devices))
	case errors.Is(err, vkey.ErrNoDevice):
		return t, withExitCode(exitNoDevice, fmt.Errorf("%w: no vkey is running and no FIDO device is plugged in (start one with `vkey run`)", vkey.ErrNoDevice))
	}
	return t, err
}

// session is an open connection to a key, with the platform's rules of
// ctap2/client (PIN protocol, tokens, credential management).
type session struct {
	*client.Session
	t    vkey.Device
	conn *hid.Client
}

// open resolves and dials the device and reads its getInfo.
func (d *deviceOptions) open(ctx context.Context) (*session, error) {
	t, err := d.resolve(ctx)
	if err != nil {
		return nil, err
	}
	conn, err := hid.Dial(ctx, t.Addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, withExitCode(exitTimeout, fmt.Errorf("%s did not answer: %w", t.Addr, err))
		}
		return nil, withExitCode(exitNoDevice, fmt.Errorf("%w: %v (`vkey devices` lists the keys it can reach)", vkey.ErrNoDevice, err))
	}
	cs, err := client.NewSession(ctx, conn, func(context.Context) (string, error) { return readPIN(d.pinFile, "VKEY_PIN", "PIN: ") })
	if err != nil {
		conn.Close()
		return nil, ctapError(err)
	}
	return &session{Session: cs, t: t, conn: conn}, nil
}

func (s *session) Close() error { return s.conn.Close() }

// withSession is the frame of every command that talks to a key: it bounds
// cmd by --timeout, opens the device, runs fn on it and closes it.
func (d *deviceOptions) withSession(cmd *cobra.Command, fn func(ctx context.Context, s *session) error) error {
	ctx, cancel := d.withTimeout(cmd.Context())
	defer cancel()
	s, err := d.open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	return fn(ctx, s)
}

// print writes v as JSON under --json, and otherwise calls text, which
// prints it for people.
func (d *deviceOptions) print(w io.Writer, v any, text func() error) error {
	if d.json {
		return printJSON(w, v)
	}
	return text()
}

// ctapError gives CTAP failures a sentence and an exit status.
func ctapError(err error) error {
	if err == nil {
		return nil
	}
	var ec *exitCodeError
	if errors.As(err, &ec) {
		return err
	}
	switch {
	case errors.Is(err, client.ErrNoPIN):
		return errors.New("this key has no PIN; set one first with `vkey pin set`")
	case errors.Is(err, client.ErrNoCredMgmt):
		return errors.New("this key does not support credential management")
	case errors.Is(err, client.ErrNoLargeBlobs):
		return errors.New("this key does not support large blobs")
	}
	var st ctap2.Status
	if errors.As(err, &st) {
		switch st {
		case ctap2.ErrPINInvalid:
			return withExitCode(exitPINInvalid, fmt.Errorf("wrong PIN (%w); `vkey pin retries` tells how many attempts are left", err))
		case ctap2.ErrPINBlocked:
			return withExitCode(exitPINBlocked, fmt.Errorf("the PIN is blocked (%w): only `vkey reset` makes the key usable again, erasing it", err))
		case ctap2.ErrPINAuthBlocked:
			return withExitCode(exitPINBlocked, fmt.Errorf("three wrong PINs in a row (%w): unplug and replug the key (a vkey: POST /power-cycle) before trying again", err))
		case ctap2.ErrUserActionTimeout, ctap2.ErrActionTimeout, ctap2.ErrTimeout:
			return withExitCode(exitTimeout, fmt.Errorf("nobody touched the key in time (%w); run the command again and touch the key (a vkey: `vkey touch`)", err))
		case ctap2.ErrOperationDenied:
			return fmt.Errorf("the touch was refused (%w); run the command again and approve it", err)
		case ctap2.ErrPINNotSet:
			return fmt.Errorf("this key has no PIN (%w); set one with `vkey pin set`", err)
		case ctap2.ErrPUATRequired:
			return fmt.Errorf("this key requires a PIN for that (%w); give it with --pin-file or VKEY_PIN, or set one with `vkey pin set`", err)
		case ctap2.ErrPINPolicyViolation:
			return fmt.Errorf("the key's PIN policy refuses that (%w): check the minimum PIN length in `vkey info`", err)
		}
		return err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return withExitCode(exitTimeout, fmt.Errorf("the key did not answer within --timeout (%w); if it waits for a touch, touch it (a vkey: `vkey touch`), or give a longer --timeout", err))
	}
	return err
}

// withTimeout bounds a command by --timeout.
func (d *deviceOptions) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if d.timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d.timeout)
}

// readSecret reads a PIN or passphrase: from file, from the environment
// variable env, or from the terminal without echo. Never from a flag value.
func readSecret(file, env, prompt string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("reading %s: %w", file, err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	if v, ok := os.LookupEnv(env); ok {
		return v, nil
	}
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return "", usageError("no terminal to ask on: give the secret with a file flag or %s", env)
	}
	defer tty.Close()
	fmt.Fprint(tty, prompt)
	b, err := term.ReadPassword(int(tty.Fd()))
	fmt.Fprintln(tty)
	if err != nil {
		return "", fmt.Errorf("reading from the terminal: %w", err)
	}
	return string(b), nil
}

// readPIN reads a PIN (see readSecret) and refuses an empty one.
func readPIN(file, env, prompt string) (string, error) {
	pin, err := readSecret(file, env, prompt)
	if err != nil {
		return "", err
	}
	if pin == "" {
		return "", usageError("empty PIN")
	}
	return pin, nil
}

// readNewSecret reads a new PIN or passphrase; on the terminal, twice.
func readNewSecret(file, env, what string) (string, error) {
	if file != "" || os.Getenv(env) != "" {
		return readPIN(file, env, "")
	}
	first, err := readPIN("", env, "New "+what+": ")
	if err != nil {
		return "", err
	}
	again, err := readPIN("", env, "New "+what+" again: ")
	if err != nil {
		return "", err
	}
	if first != again {
		return "", usageError("the two %ss differ", what)
	}
	return first, nil
}

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table prints aligned columns.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	if len(header) > 0 {
		t.row(header...)
	}
	return t
}

func (t *table) row(cols ...string) {
	for i, c := range cols {
		cols[i] = escape.Terminal(c) // from requests: no tabs, no terminal escapes
	}
	fmt.Fprintln(t.tw, strings.Join(cols, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// b64url encodes binary values for output: base64url without padding.
func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// parseID accepts base64url (what vkey prints) or standard base64 (what
// fido2-token prints), padded or not.
func parseID(s string) ([]byte, error) {
	t := strings.TrimRight(strings.TrimSpace(s), "=")
	if b, err := base64.RawURLEncoding.DecodeString(t); err == nil && len(b) > 0 {
		return b, nil
	}
	if b, err := base64.RawStdEncoding.DecodeString(t); err == nil && len(b) > 0 {
		return b, nil
	}
	return nil, usageError("%q is not a credential ID (base64url or base64)", s)
}

// confirm asks a yes/no question on the terminal.
func confirm(in io.Reader, out io.Writer, question, want string) bool {
	fmt.Fprintf(out, "%s Type %q to continue: ", question, want)
	line, _ := bufio.NewReader(in).ReadString('\n')
	return strings.TrimSpace(line) == want
}
