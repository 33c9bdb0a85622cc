package main

import (
	"errors"
	"fmt"
	"io"
	"os"
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

// doctor prints one line per check and returns how many failed.
func doctor(w io.Writer) int {
	problems := 0
	check := func(name string, err error, fix string) {
		if err == nil {
			fmt.Fprintf(w, "ok    %s\n", name)
			return
		}
		problems++
		fmt.Fprintf(w, "FAIL  %s: %v\n      fix: %s\n", name, err, fix)
	}
	_, modErr := os.Stat("/sys/module/uhid")
	if modErr != nil {
		modErr = errors.New("the uhid module is not loaded")
	}
	check("uhid kernel module", modErr, "sudo modprobe uhid && echo uhid | sudo tee /etc/modules-load.d/uhid.conf")
	check("/dev/uhid writable", vkey.UHIDUsable(), "vkey udev-rules | sudo tee /etc/udev/rules.d/70-vkey.rules && sudo udevadm control --reload && sudo udevadm trigger")
	check("FIDO hidraw nodes readable", hidrawAccess(), "vkey udev-rules | sudo tee /etc/udev/rules.d/70-vkey.rules && sudo udevadm trigger")
	t, err := tpm.Open("")
	if err == nil {
		t.Close()
	}
	check("TPM 2.0 (/dev/tpmrm0)", err, "without a TPM vkey uses software keys; to use one: sudo usermod -aG tss $USER, then log in again")
	return problems
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
