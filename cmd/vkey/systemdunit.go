package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
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
	f.StringVar(&o.name, "name", defaultName, "name of the key")
	f.StringVar(&o.presence, "presence", "desktop", "desktop, touch, auto or deny (prompt needs a terminal, which a service lacks)")
	f.StringVar(&o.state, "state", "", "state folder (default $XDG_DATA_HOME/vkey/NAME)")
	f.StringVar(&o.transport, "transport", "uhid", "uhid, pty or auto")
	return cmd
}

// unit returns the unit file's text.
func (o *systemdUnitOptions) unit() (string, error) {
	switch o.presence {
	case "desktop", "touch", "auto", "deny":
	case "prompt":
		return "", usageError("--presence prompt needs a terminal, which a service has not; use desktop or touch")
	default:
		return "", usageError("unknown --presence %q (want desktop, touch, auto or deny)", o.presence)
	}
	switch o.transport {
	case "uhid", "pty", "auto":
	default:
		return "", usageError("unknown --transport %q (want uhid, pty or auto)", o.transport)
	}
	if o.name == "" || strings.ContainsAny(o.name, "/\x00\n") {
		return "", usageError("--name must be a non-empty name without slashes")
	}
	bin := o.bin
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return "", fmt.Errorf("finding this binary: %w (give --bin PATH)", err)
		}
		bin = exe
	}
	if !filepath.IsAbs(bin) {
		return "", usageError("--bin must be an absolute path, as systemd wants")
	}
	args := []string{bin, "run", "--name", o.name, "--transport", o.transport, "--presence", o.presence}
	if o.state != "" {
		abs, err := filepath.Abs(o.state)
		if err != nil {
			return "", fmt.Errorf("--state: %w", err)
		}
		args = append(args, "--state", abs)
	}
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = systemdQuote(a)
	}
	after := ""
	if o.presence == "desktop" {
		// The desktop prompt asks the notification service on the session bus.
		after = "After=dbus.socket graphical-session.target\n"
	}
	return fmt.Sprintf(`# vkey: a virtual FIDO2 security key, started at login.
# Install: vkey systemd-unit > ~/.config/systemd/user/vkey.service
#          systemctl --user daemon-reload && systemctl --user enable --now vkey.service
[Unit]
Description=vkey virtual FIDO2 security key %s
Documentation=man:vkey-run(1)
%s
[Service]
Type=exec
ExecStart=%s
Restart=on-failure
RestartSec=2s
NoNewPrivileges=yes
UMask=0077

[Install]
WantedBy=default.target
`, systemdEscape(o.name), after, strings.Join(quoted, " ")), nil
}

// systemdEscape escapes the specifier character % (systemd.unit(5),
// "Specifiers") and drops control characters.
func systemdEscape(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	return strings.ReplaceAll(s, "%", "%%")
}

// systemdQuote quotes one ExecStart argument (systemd.service(5),
// "Command lines"): double quotes, with \ and " escaped, % doubled as a
// specifier and $ doubled so that no variable is expanded.
func systemdQuote(s string) string {
	s = systemdEscape(s)
	s = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", "$$").Replace(s)
	return `"` + s + `"`
}
