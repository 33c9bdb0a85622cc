package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/vkey-dev/vkey"
	"github.com/vkey-dev/vkey/internal/systemdunit"
)

// systemdUnitOptions are the flags of `vkey systemd-unit`.
type systemdUnitOptions struct {
	bin       string
	name      string
	presence  string
	state     string
	transport string
}

func newSystemdUnitCommand() *cobra.Command {
	o := &systemdUnitOptions{}
	cmd := &cobra.Command{
		Use:   "systemd-unit",
		Short: "Print a systemd user unit that starts the key at login",
		Long: `Print a systemd user unit that runs "vkey run" at login with the name, state
and presence chosen here. A service has no terminal: the default presence is
desktop (a notification with Approve and Deny buttons; without a desktop the
key waits for "vkey touch").

Install it:
  vkey systemd-unit > ~/.config/systemd/user/vkey.service
  systemctl --user daemon-reload && systemctl --user enable --now vkey.service`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			unit, err := o.unit()
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(cmd.OutOrStdout(), unit)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.bin, "bin", "", "the vkey binary the unit runs (default: this one)")
	f.StringVar(&o.name, "name", vkey.DefaultName, "name of the key")
	f.StringVar(&o.presence, "presence", "desktop", "desktop, touch, auto or deny (prompt needs a terminal, which a service lacks)")
	f.StringVar(&o.state, "state", "", "state folder (default $XDG_DATA_HOME/vkey/NAME)")
	f.StringVar(&o.transport, "transport", "uhid", "uhid, pty or auto")
	return cmd
}

// unit returns the unit file's text.
func (o *systemdUnitOptions) unit() (string, error) {
	bin := o.bin
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return "", fmt.Errorf("finding this binary: %w (give --bin PATH)", err)
		}
		bin = exe
	}
	unit, err := systemdunit.Unit(systemdunit.Options{Bin: bin, Name: o.name, Presence: o.presence, State: o.state, Transport: o.transport})
	var bad *systemdunit.OptionError
	if errors.As(err, &bad) {
		return "", withExitCode(exitUsage, err)
	}
	return unit, err
}
