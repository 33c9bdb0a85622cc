// Command vkey is a software FIDO2 security key for Linux: `vkey run` starts
// a virtual key (on uhid, a pty or UDP), and the other subcommands manage a
// key through CTAP2 as they would a hardware one.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes (documented in `vkey --help` and the README).
const (
	exitOK          = 0
	exitError       = 1
	exitUsage       = 2
	exitPINInvalid  = 3
	exitPINBlocked  = 4
	exitNoDevice    = 5
	exitTimeout     = 6
	exitHelpSummary = `Exit status: 0 ok, 1 error, 2 usage, 3 wrong PIN, 4 PIN blocked, 5 no device, 6 timeout.`
)

// exitCodeError carries an exit code with the error that explains it.
type exitCodeError struct {
	code int
	err  error
}

func (e *exitCodeError) Error() string { return e.err.Error() }
func (e *exitCodeError) Unwrap() error { return e.err }

// withExitCode attaches an exit code to err.
func withExitCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitCodeError{code: code, err: err}
}

// usageError is an error in how the command was called (exit status 2).
func usageError(format string, args ...any) error {
	return withExitCode(exitUsage, fmt.Errorf(format, args...))
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "vkey",
		Short: "A software FIDO2 security key for Linux",
		Long: `vkey is a virtual FIDO2 (CTAP 2.1) and U2F security key. "vkey run" makes a key
that browsers, libfido2, OpenSSH and other FIDO2 clients use like a USB key;
the other commands manage a key (virtual or hardware) over CTAP2.

` + exitHelpSummary,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return withExitCode(exitUsage, err) })
	root.AddCommand(
		newRunCommand(),
		newDoctorCommand(),
		newUdevRulesCommand(),
		newSystemdUnitCommand(),
		newTouchCommand(),
		newUVCommand(),
		newAttestationCommand(),
		newInfoCommand(),
		newPINCommand(),
		newCredsCommand(),
		newResetCommand(),
		newConfigCommand(),
		newLargeBlobCommand(),
		newDevicesCommand(),
		newBackupCommand(),
		newManCommand(),
		newWebAuthnCommand(),
	)
	return root
}

// isUsageError recognises cobra's own errors about arguments and commands.
func isUsageError(err error) bool {
	msg := err.Error()
	for _, s := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "arg(s)", "required flag", "invalid argument"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

func main() {
	os.Exit(run(context.Background(), os.Args[1:]))
}

// run executes the CLI and returns the process exit status.
func run(ctx context.Context, args []string) int {
	root := newRootCommand()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(os.Stderr, "vkey: %v\n", err)
	var ec *exitCodeError
	if errors.As(err, &ec) {
		return ec.code
	}
	if isUsageError(err) {
		return exitUsage
	}
	return exitError
}
