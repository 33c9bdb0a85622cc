package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/vkey-dev/vkey"
	"github.com/vkey-dev/vkey/hid"
	"github.com/vkey-dev/vkey/tpm"
)

func newDoctorCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "doctor",
		Short: "Check what vkey needs (uhid, hidraw access, TPM) and print the fix for each",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if problems := doctor(cmd.OutOrStdout()); problems > 0 {
				return fmt.Errorf("%d problem(s) found; the fixes are above", problems)
			}
			return nil
		},
	}
}

// doctor prints one line per check of this machine and returns how many
// failed.
func doctor(w io.Writer) int {
	return doctorWith(w, doctorEnv{
		uhidModule: func() error {
			if _, err := os.Stat("/sys/module/uhid"); err != nil {
				return errors.New("the uhid module is not loaded")
			}
			return nil
		},
		superuser:  os.Geteuid() == 0,
		uhidUsable: vkey.UHIDUsable,
		hidraw:     hidrawAccess,
		tpm: func() error {
			t, err := tpm.Open("")
			if err == nil {
				t.Close()
			}
			return err
		},
	})
}

// doctorEnv is what doctor checks; tests give their own.
type doctorEnv struct {
	// root prefixes the udev rule folders ("" is the machine's own).
	root string
	// superuser: root opens /dev/uhid and hidraw nodes without a rule.
	superuser                           bool
	uhidModule, uhidUsable, hidraw, tpm func() error
}

// doctorWith prints one line per check and returns how many failed.
func doctorWith(w io.Writer, env doctorEnv) int {
	problems := 0
	check := func(name string, err error, fix string) {
		if err == nil {
			fmt.Fprintf(w, "ok    %s\n", name)
			return
		}
		problems++
		fmt.Fprintf(w, "FAIL  %s: %v\n      fix: %s\n", name, err, fix)
	}
	check("uhid kernel module", env.uhidModule(), "sudo modprobe uhid && echo uhid | sudo tee /etc/modules-load.d/uhid.conf")
	uhidErr, hidrawErr := env.uhidUsable(), env.hidraw()
	active, overridden := findUdevRule(env.root)
	// The fix for access: install the rule only where none is; a rule the
	// package put in /usr/lib/udev/rules.d needs reloading, not copying.
	installFix := "vkey udev-rules | sudo tee " + udevRuleDirs[0] + "/" + udevRuleName + " && sudo udevadm control --reload && sudo udevadm trigger"
	if active != "" {
		installFix = "the rule " + active + " is installed: sudo udevadm control --reload && sudo udevadm trigger, then log out and in again (it gives access to the user logged in at a seat)"
	}
	switch {
	case active != "":
		line := "udev rule " + active + " (active)"
		if len(overridden) > 0 {
			line += "; it overrides " + strings.Join(overridden, ", ")
		}
		fmt.Fprintf(w, "ok    %s\n", line)
	case uhidErr == nil && hidrawErr == nil:
		fmt.Fprintf(w, "-     udev rule: none installed, not needed by this user (/dev/uhid and the FIDO hidraw nodes are usable)\n")
	case env.superuser:
		fmt.Fprintf(w, "-     udev rule: none installed; root needs none, other users do: %s\n", installFix)
	default:
		check("udev rule", fmt.Errorf("no %s in %s", udevRuleName, strings.Join(udevRuleDirs, ", ")), installFix)
	}
	check("/dev/uhid writable", uhidErr, installFix)
	check("FIDO hidraw nodes readable", hidrawErr, installFix)
	check("TPM 2.0 (/dev/tpmrm0)", env.tpm(), "without a TPM vkey uses software keys; to use one: sudo usermod -aG tss $USER, then log in again")
	return problems
}

// udevRuleName is the file vkey's rules go in (make install, the package).
const udevRuleName = "70-vkey.rules"

// udevRuleDirs are where udev reads rules, the one that wins first: a file
// in /etc/udev/rules.d overrides one of the same name in /run/udev/rules.d,
// which overrides /usr/lib/udev/rules.d (where packages put theirs) and
// /lib/udev/rules.d (udev(7), "Rules Files").
var udevRuleDirs = []string{"/etc/udev/rules.d", "/run/udev/rules.d", "/usr/lib/udev/rules.d", "/lib/udev/rules.d"}

// findUdevRule returns the path of the vkey rule udev uses, under root, and
// the paths of the ones it overrides ("" when there is none). /lib is
// /usr/lib on merged-/usr systems: the same file is counted once.
func findUdevRule(root string) (active string, overridden []string) {
	var seen []os.FileInfo
	for _, dir := range udevRuleDirs {
		path := dir + "/" + udevRuleName
		fi, err := os.Stat(filepath.Join(root, path))
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if slices.ContainsFunc(seen, func(o os.FileInfo) bool { return os.SameFile(o, fi) }) {
			continue
		}
		seen = append(seen, fi)
		if active == "" {
			active = path
		} else {
			overridden = append(overridden, path)
		}
	}
	return active, overridden
}

// hidrawAccess checks that every existing FIDO hidraw node can be opened.
func hidrawAccess() error {
	var denied []string
	for _, d := range hid.FIDODevices() {
		f, err := os.OpenFile(d.Path, os.O_RDWR, 0)
		if err != nil {
			denied = append(denied, d.Path)
			continue
		}
		f.Close()
	}
	if len(denied) > 0 {
		return fmt.Errorf("cannot open %s", strings.Join(denied, ", "))
	}
	return nil
}
