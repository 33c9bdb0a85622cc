package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/internal/control"
	"golang.org/x/term"
)

func newResetCommand() *cobra.Command {
	d := &deviceOptions{}
	var yes bool
	cmd := &cobra.Command{
		Use:   "reset",
		Short: "Erase a key: every passkey, the PIN, the settings and the large blobs",
		Long: `Reset the key (authenticatorReset, CTAP 2.1 section 6.6). Every credential on it
stops working for good, the PIN and settings are erased. Asks for confirmation
unless --yes is given.

A key accepts a reset only within 10 seconds of being plugged in, and only after
a touch. For a running vkey, this command power cycles it through its control
socket first (as replugging would); then touch it (` + "`vkey touch`" + `, or
automatically with --presence auto). For a hardware key, unplug it and plug it
back in, then run this command and touch the key within 10 seconds.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			if !yes {
				if !term.IsTerminal(int(os.Stdin.Fd())) {
					return usageError("refusing to reset without confirmation: run on a terminal or give --yes")
				}
				if !confirm(cmd.InOrStdin(), out, "This erases every passkey, the PIN and the settings of the key.", "reset") {
					return errors.New("not reset")
				}
			}
			return d.withSession(cmd, func(ctx context.Context, s *session) error {
				if s.t.ControlSocket != "" {
					if err := control.NewUnixClient(s.t.ControlSocket).PowerCycle(ctx); err != nil {
						return fmt.Errorf("power cycling the vkey before the reset: %w", err)
					}
				}
				fmt.Fprintln(cmd.ErrOrStderr(), "vkey: touch the key to confirm the reset")
				if err := s.Reset(ctx); err != nil {
					if errors.Is(err, ctap2.ErrNotAllowed) {
						return errors.New("the key refused: a reset is allowed only within 10 seconds of plugging it in; replug it and try again at once")
					}
					return ctapError(err)
				}
				fmt.Fprintln(out, "vkey: the key is reset")
				return nil
			})
		},
	}
	d.addFlags(cmd, false, false)
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}
