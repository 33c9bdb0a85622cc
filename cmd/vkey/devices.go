package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/vkey-dev/vkey"
	"github.com/vkey-dev/vkey/hid"
)

// devicesJSON is `vkey devices --json`.
type devicesJSON struct {
	Devices []hid.FIDODevice  `json:"devices"`
	VKeys   []vkey.RunningKey `json:"vkeys"`
}

func newDevicesCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "devices",
		Short: "List the FIDO devices (hidraw) and the running vkeys",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			v := devicesJSON{Devices: hid.FIDODevices(), VKeys: []vkey.RunningKey{}}
			if v.Devices == nil {
				v.Devices = []hid.FIDODevice{}
			}
			keys, err := vkey.RunningKeys(ctx)
			if err != nil {
				return err
			}
			v.VKeys = append(v.VKeys, keys...)
			w := cmd.OutOrStdout()
			if asJSON {
				return printJSON(w, v)
			}
			if len(v.Devices) == 0 && len(v.VKeys) == 0 {
				fmt.Fprintln(w, "no FIDO device and no running vkey")
				return nil
			}
			t := newTable(w, "KIND", "DEVICE", "NAME", "PID", "PRESENCE")
			for _, d := range v.Devices {
				t.row("hidraw", d.Path, d.Name, "", "")
			}
			for _, k := range v.VKeys {
				t.row("vkey", k.Transport, k.Name, strconv.Itoa(k.PID), k.Presence)
			}
			return t.flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (docs/cli.md)")
	return cmd
}
