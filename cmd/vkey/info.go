package main

import (
	"context"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/vkey-dev/vkey"
	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/ctap2/client"
	"github.com/vkey-dev/vkey/keystore"
)

// infoJSON is `vkey info --json` (docs/cli.md).
type infoJSON struct {
	Device                           string          `json:"device"`
	Versions                         []string        `json:"versions"`
	Extensions                       []string        `json:"extensions"`
	AAGUID                           string          `json:"aaguid"`
	Options                          map[string]bool `json:"options"`
	MaxMsgSize                       uint64          `json:"maxMsgSize"`
	PinUvAuthProtocols               []uint64        `json:"pinUvAuthProtocols"`
	MaxCredentialCountInList         uint64          `json:"maxCredentialCountInList"`
	MaxCredentialIDLength            uint64          `json:"maxCredentialIdLength"`
	Transports                       []string        `json:"transports"`
	Algorithms                       []string        `json:"algorithms"`
	MaxSerializedLargeBlobArray      uint64          `json:"maxSerializedLargeBlobArray"`
	ForcePINChange                   bool            `json:"forcePINChange"`
	MinPINLength                     uint64          `json:"minPINLength"`
	FirmwareVersion                  uint64          `json:"firmwareVersion"`
	MaxCredBlobLength                uint64          `json:"maxCredBlobLength"`
	MaxRPIDsForSetMinPINLength       uint64          `json:"maxRPIDsForSetMinPINLength"`
	RemainingDiscoverableCredentials *uint64         `json:"remainingDiscoverableCredentials"`
}

func infoValue(device string, in *ctap2.GetInfoResponse) infoJSON {
	out := infoJSON{
		Device: device, Versions: in.Versions, Extensions: in.Extensions, AAGUID: vkey.FormatAAGUID(in.AAGUID),
		Options: in.Options, MaxMsgSize: in.MaxMsgSize, PinUvAuthProtocols: in.PinUvAuthProtocols,
		MaxCredentialCountInList: in.MaxCredentialCountInList, MaxCredentialIDLength: in.MaxCredentialIDLength,
		Transports: in.Transports, MaxSerializedLargeBlobArray: in.MaxSerializedLargeBlobArray,
		ForcePINChange: in.ForcePINChange, MinPINLength: client.MinPINLength(in), FirmwareVersion: in.FirmwareVersion,
		MaxCredBlobLength: in.MaxCredBlobLength, MaxRPIDsForSetMinPINLength: in.MaxRPIDsForSetMinPINLength,
		RemainingDiscoverableCredentials: in.RemainingDiscoverableCredentials,
	}
	for _, a := range in.Algorithms {
		out.Algorithms = append(out.Algorithms, keystore.Algorithm(a.Alg).Name())
	}
	for _, s := range []*[]string{&out.Versions, &out.Extensions, &out.Transports, &out.Algorithms} {
		if *s == nil {
			*s = []string{}
		}
	}
	if out.Options == nil {
		out.Options = map[string]bool{}
	}
	if out.PinUvAuthProtocols == nil {
		out.PinUvAuthProtocols = []uint64{}
	}
	return out
}

func joinUints(v []uint64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.FormatUint(x, 10)
	}
	return strings.Join(s, ", ")
}

func newInfoCommand() *cobra.Command {
	d := &deviceOptions{}
	cmd := &cobra.Command{
		Use:   "info",
		Short: "Show what a key supports (authenticatorGetInfo)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return d.withSession(cmd, func(_ context.Context, s *session) error {
				v := infoValue(s.t.Addr, s.Info)
				w := cmd.OutOrStdout()
				return d.print(w, v, func() error { return printInfo(w, v) })
			})
		},
	}
	d.addFlags(cmd, false, true)
	return cmd
}

// printInfo prints `vkey info` for people.
func printInfo(w io.Writer, v infoJSON) error {
	var opts []string
	for k, on := range v.Options {
		if on {
			opts = append(opts, k)
		} else {
			opts = append(opts, k+"=false")
		}
	}
	sort.Strings(opts)
	remaining := "unknown"
	if v.RemainingDiscoverableCredentials != nil {
		remaining = strconv.FormatUint(*v.RemainingDiscoverableCredentials, 10)
	}
	t := newTable(w)
	t.row("device:", v.Device)
	t.row("versions:", strings.Join(v.Versions, ", "))
	t.row("aaguid:", v.AAGUID)
	t.row("extensions:", strings.Join(v.Extensions, ", "))
	t.row("options:", strings.Join(opts, ", "))
	t.row("algorithms:", strings.Join(v.Algorithms, ", "))
	t.row("transports:", strings.Join(v.Transports, ", "))
	t.row("PIN protocols:", joinUints(v.PinUvAuthProtocols))
	t.row("min PIN length:", strconv.FormatUint(v.MinPINLength, 10))
	t.row("force PIN change:", strconv.FormatBool(v.ForcePINChange))
	t.row("max message size:", strconv.FormatUint(v.MaxMsgSize, 10))
	t.row("max credential ID length:", strconv.FormatUint(v.MaxCredentialIDLength, 10))
	t.row("max credentials in list:", strconv.FormatUint(v.MaxCredentialCountInList, 10))
	t.row("large-blob array size:", strconv.FormatUint(v.MaxSerializedLargeBlobArray, 10))
	t.row("max credBlob length:", strconv.FormatUint(v.MaxCredBlobLength, 10))
	t.row("remaining passkeys:", remaining)
	t.row("firmware version:", strconv.FormatUint(v.FirmwareVersion, 10))
	return t.flush()
}
