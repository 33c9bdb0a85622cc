package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"github.com/vkey-dev/vkey"
	"github.com/vkey-dev/vkey/ctap2/browser"
	"github.com/vkey-dev/vkey/ctap2/client"
)

// webauthnOptions are the flags of `vkey webauthn create|get`.
type webauthnOptions struct {
	dev            deviceOptions
	origin         string
	topOrigin      string
	ephemeral      bool
	state          string
	passphraseFile string
}

func newWebAuthnCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "webauthn",
		Short: "Be the browser: WebAuthn options JSON in, response JSON out",
		Long: `vkey webauthn create|get does what a browser's navigator.credentials.create()
and get() do, for tests of relying parties in any language: it reads the RP's
options JSON (PublicKeyCredentialCreationOptionsJSON or RequestOptionsJSON,
bare or as {"publicKey": ...}) on stdin, checks the RP ID against --origin,
runs the ceremony on the key, and writes the RegistrationResponseJSON or
AuthenticationResponseJSON on stdout:

  curl RP/options | vkey webauthn create --origin https://example.com | curl -d @- RP/verify

The key is the running vkey or any FIDO2 device (--device), or an in-process
key (--ephemeral; --state DIR keeps its credentials between calls). When user
verification is asked for, the PIN comes from --pin-file or VKEY_PIN.

A failure is a DOMException as a browser throws it (NotAllowedError,
InvalidStateError, SecurityError, NotSupportedError, ConstraintError); with
--json, {"error":{"name":...,"message":...}} is also written on stdout.
` + exitHelpSummary,
	}
	cmd.AddCommand(newWebAuthnCeremonyCommand("create", "Register a credential, as navigator.credentials.create()"),
		newWebAuthnCeremonyCommand("get", "Sign in with a credential, as navigator.credentials.get()"))
	return cmd
}

func newWebAuthnCeremonyCommand(name, short string) *cobra.Command {
	o := &webauthnOptions{}
	cmd := &cobra.Command{
		Use:   name + " --origin ORIGIN < options.json > response.json",
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd, name)
		},
	}
	o.dev.addFlags(cmd, true, true)
	f := cmd.Flags()
	// The response is always JSON; the shared flags say what they do here.
	f.Lookup("json").Usage = "on a failure, also print {\"error\":{\"name\":DOMEXCEPTION,\"message\":...}} on stdout"
	f.Lookup("pin-file").Usage = "read the PIN, for user verification, from this file (or set VKEY_PIN); without either the user knows no PIN"
	f.StringVar(&o.origin, "origin", "", "the origin of the calling page, e.g. https://example.com (required)")
	f.StringVar(&o.topOrigin, "top-origin", "", "the top-level page's origin, for a call from a cross-origin iframe")
	f.BoolVar(&o.ephemeral, "ephemeral", false, "use an in-process key instead of a device (with a PIN when --pin-file or VKEY_PIN gives one)")
	f.StringVar(&o.state, "state", "", "with --ephemeral: keep the in-process key's state in this folder between calls")
	f.StringVar(&o.passphraseFile, "passphrase-file", "", "with --state: protect the state with the passphrase in this file")
	_ = cmd.MarkFlagRequired("origin")
	return cmd
}

func (o *webauthnOptions) run(cmd *cobra.Command, ceremony string) error {
	if o.state != "" && !o.ephemeral {
		return usageError("--state goes with --ephemeral (a device keeps its own state)")
	}
	if o.ephemeral && o.dev.device != "" {
		return usageError("--device and --ephemeral exclude each other")
	}
	options, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), 1<<20))
	if err != nil {
		return fmt.Errorf("reading the options from stdin: %w", err)
	}
	pin, err := o.pin()
	if err != nil {
		return err
	}
	ctx, cancel := o.dev.withTimeout(cmd.Context())
	defer cancel()
	var out any
	err = o.withTransport(ctx, cmd, pin, func(t client.Transport) error {
		c := browser.New(t, browser.Options{PIN: pin})
		var err error
		if ceremony == "create" {
			out, err = c.CreateInFrame(ctx, options, o.origin, o.topOrigin)
		} else {
			out, err = c.GetInFrame(ctx, options, o.origin, o.topOrigin)
		}
		return err
	})
	if err != nil {
		if o.dev.json {
			o.printError(cmd.OutOrStdout(), err)
		}
		return webauthnExitCode(err)
	}
	return printJSON(cmd.OutOrStdout(), out)
}

// pin is the PIN from --pin-file or VKEY_PIN; "" when neither is given
// (the key is then used without one, as by a user who knows none).
func (o *webauthnOptions) pin() (string, error) {
	if o.dev.pinFile == "" && os.Getenv("VKEY_PIN") == "" {
		return "", nil
	}
	return readPIN(o.dev.pinFile, "VKEY_PIN", "")
}

// withTransport runs fn on the chosen key: the device, or an in-process
// key (in memory, or over --state).
func (o *webauthnOptions) withTransport(ctx context.Context, cmd *cobra.Command, pin string, fn func(client.Transport) error) error {
	if !o.ephemeral {
		s, err := o.dev.open(ctx)
		if err != nil {
			return err
		}
		defer s.Close()
		return fn(s.conn)
	}
	// In memory, or the state folder of `vkey run --state`, opened as it
	// opens it.
	opts, err := stateOptions(vkey.DefaultName, o.state, o.state == "", o.passphraseFile)
	if err != nil {
		return err
	}
	opts.PIN = pin
	kctx, cancel := context.WithCancel(ctx)
	defer cancel()
	k, err := vkey.New(kctx, opts)
	if err != nil {
		return err
	}
	defer k.Close()
	return fn(k.Direct())
}

// webauthnError is the --json form of a failure.
type webauthnError struct {
	Error struct {
		Name    string `json:"name"`
		Message string `json:"message"`
	} `json:"error"`
}

func (o *webauthnOptions) printError(w io.Writer, err error) {
	var e webauthnError
	e.Error.Name = browser.ErrorName(err)
	if e.Error.Name == "" {
		e.Error.Name = "Error"
	}
	e.Error.Message = err.Error()
	_ = printJSON(w, e)
}

// webauthnExitCode keeps the browser's message and gives it the exit
// status the other commands give its cause (wrong PIN 3, blocked 4, no
// device 5, timeout 6).
func webauthnExitCode(err error) error {
	var ec *exitCodeError
	if errors.As(err, &ec) {
		return err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return withExitCode(exitTimeout, err)
	}
	if errors.As(ctapError(err), &ec) {
		return withExitCode(ec.code, err)
	}
	return err
}
