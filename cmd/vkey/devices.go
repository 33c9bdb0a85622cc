package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/vkey-dev/vkey/hid"
)

// runningKeyJSON is one vkey of `vkey devices --json`.
type runningKeyJSON struct {
	Name      string `json:"name"`
	Transport string `json:"transport"`
	PID       int    `json:"pid"`
	Presence  string `json:"presence"`
	Socket    string `json:"socket"`
}

// devicesJSON is `vkey devices --json`.
type devicesJSON struct {
	Devices []hid.FIDODevice `json:"devices"`
	VKeys   []runningKeyJSON `json:"vkeys"`
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
			v := devicesJSON{Devices: hid.FIDODevices(), VKeys: []runningKeyJSON{}}
			if v.Devices == nil {
				v.Devices = []hid.FIDODevice{}
			}
			keys, err := runningKeys(ctx)
			if err != nil {
				return err
			}
			for _, k := range keys {
				v.VKeys = append(v.VKeys, runningKeyJSON{Name: k.Info.Name, Transport: k.Info.Transport,
					PID: k.Info.PID, Presence: k.Info.Presence, Socket: k.Socket})
			}
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
