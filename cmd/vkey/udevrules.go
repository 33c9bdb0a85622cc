package main

import (
	"io"

	"github.com/spf13/cobra"
)

// udevRules give the logged-in user (uaccess) access to /dev/uhid and to
// FIDO hidraw nodes, the way distributions' libfido2 rules do for hardware keys.
const udevRules = `# vkey: let the logged-in user create virtual security keys and use FIDO devices.
# Install: vkey udev-rules | sudo tee /etc/udev/rules.d/70-vkey.rules
#          sudo udevadm control --reload && sudo udevadm trigger
KERNEL=="uhid", SUBSYSTEM=="misc", TAG+="uaccess", OPTIONS+="static_node=uhid"
# Every hidraw device whose report descriptor uses the FIDO usage page (0xF1D0).
KERNEL=="hidraw*", SUBSYSTEM=="hidraw", ATTRS{report_descriptor}=="*", PROGRAM="/bin/sh -c 'od -An -tx1 /sys%p/device/report_descriptor | tr -d \" \\n\" | grep -q \"06d0f1\"'", TAG+="uaccess"
`

func newUdevRulesCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "udev-rules",
		Short: "Print udev rules that give the logged-in user access to /dev/uhid and FIDO hidraw nodes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := io.WriteString(cmd.OutOrStdout(), udevRules)
			return err
		},
	}
}
