// Package systemdunit writes the systemd user unit that starts `vkey run`
// at login (`vkey systemd-unit`).
package systemdunit

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Options are what the unit runs.
type Options struct {
	// Bin is the absolute path of the vkey binary.
	Bin string
	// Name is the key's --name.
	Name string
	// Presence is desktop, touch, auto or deny: a service has no terminal
	// to prompt on.
	Presence string
	// State is the state folder; empty for the default one of Name.
	State string
	// Transport is uhid, pty or auto.
	Transport string
}

// OptionError is an option the unit cannot have; its text names the flag
// of `vkey systemd-unit` to change.
type OptionError struct{ msg string }

func (e *OptionError) Error() string { return e.msg }

func optionError(format string, args ...any) error {
	return &OptionError{msg: fmt.Sprintf(format, args...)}
}

// Unit returns the unit file's text.
func Unit(o Options) (string, error) {
	switch o.Presence {
	case "desktop", "touch", "auto", "deny":
	case "prompt":
		return "", optionError("--presence prompt needs a terminal, which a service has not; use desktop or touch")
	default:
		return "", optionError("unknown --presence %q (want desktop, touch, auto or deny)", o.Presence)
	}
	switch o.Transport {
	case "uhid", "pty", "auto":
	default:
		return "", optionError("unknown --transport %q (want uhid, pty or auto)", o.Transport)
	}
	if o.Name == "" || strings.ContainsAny(o.Name, "/\x00\n") {
		return "", optionError("--name must be a non-empty name without slashes")
	}
	if !filepath.IsAbs(o.Bin) {
		return "", optionError("--bin must be an absolute path, as systemd wants")
	}
	args := []string{o.Bin, "run", "--name", o.Name, "--transport", o.Transport, "--presence", o.Presence}
	if o.State != "" {
		abs, err := filepath.Abs(o.State)
		if err != nil {
			return "", fmt.Errorf("--state: %w", err)
		}
		args = append(args, "--state", abs)
	}
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = quote(a)
	}
	after := ""
	if o.Presence == "desktop" {
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
`, escape(o.Name), after, strings.Join(quoted, " ")), nil
}

// escape escapes the specifier character % (systemd.unit(5),
// "Specifiers") and drops control characters.
func escape(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	return strings.ReplaceAll(s, "%", "%%")
}

// quote quotes one ExecStart argument (systemd.service(5), "Command
// lines"): double quotes, with \ and " escaped, % doubled as a specifier
// and $ doubled so that no variable is expanded.
func quote(s string) string {
	s = escape(s)
	s = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", "$$").Replace(s)
	return `"` + s + `"`
}
