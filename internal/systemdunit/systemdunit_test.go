package systemdunit

import (
	"errors"
	"strings"
	"testing"
)

// TestUnit: the arguments are quoted for ExecStart (a state path with
// quotes, $ and % survives), the desktop presence waits for the session
// bus, and options a service cannot have are OptionErrors.
func TestUnit(t *testing.T) {
	unit, err := Unit(Options{Bin: "/usr/bin/vkey", Name: "work 100%", Presence: "desktop", Transport: "uhid", State: `/k/my "keys" $HOME\`})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`ExecStart="/usr/bin/vkey" "run" "--name" "work 100%%" "--transport" "uhid" "--presence" "desktop" "--state" "/k/my \"keys\" $$HOME\\"` + "\n",
		"Description=vkey virtual FIDO2 security key work 100%%\n",
		"After=dbus.socket graphical-session.target\n",
		"WantedBy=default.target\n",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q:\n%s", want, unit)
		}
	}
	if unit, _ := Unit(Options{Bin: "/b", Name: "n", Presence: "touch", Transport: "pty"}); strings.Contains(unit, "After=") || strings.Contains(unit, "--state") {
		t.Errorf("touch unit without state:\n%s", unit)
	}
	for _, o := range []Options{
		{Bin: "/b", Name: "n", Presence: "prompt", Transport: "uhid"},
		{Bin: "/b", Name: "n", Presence: "maybe", Transport: "uhid"},
		{Bin: "/b", Name: "n", Presence: "auto", Transport: "udp"},
		{Bin: "/b", Name: "a/b", Presence: "auto", Transport: "uhid"},
		{Bin: "/b", Name: "a\nb", Presence: "auto", Transport: "uhid"},
		{Bin: "vkey", Name: "n", Presence: "auto", Transport: "uhid"},
	} {
		var oe *OptionError
		if _, err := Unit(o); !errors.As(err, &oe) {
			t.Errorf("%+v: %v, want an OptionError", o, err)
		}
	}
}
