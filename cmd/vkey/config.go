package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
	"github.com/vkey-dev/vkey/ctap2/client"
)

func newConfigCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Change a key's settings (authenticatorConfig)",
		Long: `Change the settings of a key through CTAP 2.1 authenticatorConfig (section 6.11).
Once a PIN is set, each change asks for it.`,
	}
	cmd.AddCommand(newAlwaysUVCommand(), newMinPINLengthCommand(), newEnterpriseAttestationCommand())
	return cmd
}

func parseOnOff(s string) (bool, error) {
	switch s {
	case "on", "true", "1", "yes":
		return true, nil
	case "off", "false", "0", "no":
		return false, nil
	}
	return false, usageError("%q: want on or off", s)
}

// configError words an authenticatorConfig failure for people.
func configError(err error) error {
	var unsupported *client.UnsupportedError
	if errors.As(err, &unsupported) {
		return fmt.Errorf("this key does not support %s (`vkey info` lists what it does)", unsupported.Feature)
	}
	return ctapError(err)
}

func newAlwaysUVCommand() *cobra.Command {
	d := &deviceOptions{}
	cmd := &cobra.Command{
		Use:       "always-uv on|off",
		Short:     "Require user verification (the PIN) for every use of the key",
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"on", "off"},
		RunE: func(cmd *cobra.Command, args []string) error {
			want, err := parseOnOff(args[0])
			if err != nil {
				return err
			}
			return d.withSession(cmd, func(ctx context.Context, s *session) error {
				changed, err := s.SetAlwaysUV(ctx, want)
				if err != nil {
					return configError(err)
				}
				if !changed {
					fmt.Fprintf(cmd.OutOrStdout(), "vkey: always-uv is already %s\n", args[0])
					return nil
				}
				fmt.Fprintf(cmd.OutOrStdout(), "vkey: always-uv is %s\n", args[0])
				return nil
			})
		},
	}
	d.addFlags(cmd, true, false)
	return cmd
}

func newMinPINLengthCommand() *cobra.Command {
	d := &deviceOptions{}
	var rps []string
	var force bool
	cmd := &cobra.Command{
		Use:   "min-pin-length N",
		Short: "Raise the minimum PIN length (it can never be lowered but by a reset)",
		Long: `Raise the minimum PIN length (setMinPINLength, CTAP 2.1 section 6.11.4). --rp
names the relying parties allowed to read it through the minPinLength
extension. A PIN shorter than the new minimum must be changed before its next use.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := strconv.ParseUint(args[0], 10, 8)
			if err != nil || n < 4 || n > 63 {
				return usageError("%q: the minimum PIN length is a number from 4 to 63", args[0])
			}
			return d.withSession(cmd, func(ctx context.Context, s *session) error {
				if err := s.RaiseMinPINLength(ctx, n, rps, force); err != nil {
					return configError(err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "vkey: minimum PIN length is %d\n", n)
				return nil
			})
		},
	}
	d.addFlags(cmd, true, false)
	cmd.Flags().StringSliceVar(&rps, "rp", nil, "relying party ID allowed to read the minimum PIN length (repeatable)")
	cmd.Flags().BoolVar(&force, "force-change", false, "make the user change the PIN before its next use")
	return cmd
}

func newEnterpriseAttestationCommand() *cobra.Command {
	d := &deviceOptions{}
	cmd := &cobra.Command{
		Use:       "enterprise-attestation on",
		Short:     "Enable enterprise attestation (it can be disabled only by a reset)",
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"on"},
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] != "on" {
				return usageError("enterprise attestation can only be turned on (a reset turns it off)")
			}
			return d.withSession(cmd, func(ctx context.Context, s *session) error {
				if err := s.EnableEP(ctx); err != nil {
					return configError(err)
				}
				fmt.Fprintln(cmd.OutOrStdout(), "vkey: enterprise attestation is on")
				return nil
			})
		},
	}
	d.addFlags(cmd, true, false)
	return cmd
}
