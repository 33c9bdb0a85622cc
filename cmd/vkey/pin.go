package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newPINCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pin",
		Short: "Set or change a key's PIN, or show how many attempts are left",
		Long: `Manage the key's PIN (CTAP 2.1 clientPIN). PINs are read from the terminal
without echo, or from --pin-file / VKEY_PIN (the current PIN) and
--new-pin-file / VKEY_NEW_PIN (the new one); never from the command line.`,
	}
	cmd.AddCommand(newPINSetCommand(), newPINChangeCommand(), newPINRetriesCommand())
	return cmd
}

func newPINSetCommand() *cobra.Command {
	d := &deviceOptions{}
	var newFile string
	cmd := &cobra.Command{
		Use:   "set",
		Short: "Set the first PIN of a key that has none",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := d.withTimeout(cmd.Context())
			defer cancel()
			s, err := d.open(ctx)
			if err != nil {
				return err
			}
			defer s.Close()
			if s.pinSet() {
				return fmt.Errorf("this key has a PIN already; use `vkey pin change`")
			}
			pin, err := readNewSecret(newFile, "VKEY_NEW_PIN", "PIN")
			if err != nil {
				return err
			}
			if err := s.SetPIN(ctx, s.protocol(), pin); err != nil {
				return ctapError(err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), "vkey: PIN set")
			return nil
		},
	}
	d.addFlags(cmd, false, false)
	cmd.Flags().StringVar(&newFile, "new-pin-file", "", "read the new PIN from this file (or set VKEY_NEW_PIN)")
	return cmd
}

func newPINChangeCommand() *cobra.Command {
	d := &deviceOptions{}
	var newFile string
	cmd := &cobra.Command{
		Use:   "change",
		Short: "Change the PIN",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := d.withTimeout(cmd.Context())
			defer cancel()
			s, err := d.open(ctx)
			if err != nil {
				return err
			}
			defer s.Close()
			if !s.pinSet() {
				return fmt.Errorf("this key has no PIN yet; use `vkey pin set`")
			}
			old, err := readPIN(d.pinFile, "VKEY_PIN", "Current PIN: ")
			if err != nil {
				return err
			}
			pin, err := readNewSecret(newFile, "VKEY_NEW_PIN", "PIN")
			if err != nil {
				return err
			}
			if err := s.ChangePIN(ctx, s.protocol(), old, pin); err != nil {
				return ctapError(err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), "vkey: PIN changed")
			return nil
		},
	}
	d.addFlags(cmd, true, false)
	cmd.Flags().StringVar(&newFile, "new-pin-file", "", "read the new PIN from this file (or set VKEY_NEW_PIN)")
	return cmd
}

// retriesJSON is `vkey pin retries --json`.
type retriesJSON struct {
	PINSet  bool `json:"pinSet"`
	Retries int  `json:"retries"`
}

func newPINRetriesCommand() *cobra.Command {
	d := &deviceOptions{}
	cmd := &cobra.Command{
		Use:   "retries",
		Short: "Show how many PIN attempts are left before the PIN blocks",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := d.withTimeout(cmd.Context())
			defer cancel()
			s, err := d.open(ctx)
			if err != nil {
				return err
			}
			defer s.Close()
			n, err := s.PINRetries(ctx)
			if err != nil {
				return ctapError(err)
			}
			v := retriesJSON{PINSet: s.pinSet(), Retries: n}
			if d.json {
				return printJSON(cmd.OutOrStdout(), v)
			}
			if !v.PINSet {
				fmt.Fprintf(cmd.OutOrStdout(), "no PIN set (%d attempts once set)\n", n)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d PIN attempts left\n", n)
			return nil
		},
	}
	d.addFlags(cmd, false, true)
	return cmd
}
