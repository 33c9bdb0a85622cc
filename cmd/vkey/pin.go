package main

import (
	"context"
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

// addNewPINFlag adds --new-pin-file, read by readNewPIN.
func addNewPINFlag(cmd *cobra.Command, file *string) {
	cmd.Flags().StringVar(file, "new-pin-file", "", "read the new PIN from this file (or set VKEY_NEW_PIN)")
}

// readNewPIN reads a new PIN from --new-pin-file, VKEY_NEW_PIN or, twice,
// the terminal.
func readNewPIN(file string) (string, error) {
	return readNewSecret(file, "VKEY_NEW_PIN", "PIN")
}

func newPINSetCommand() *cobra.Command {
	d := &deviceOptions{}
	var newFile string
	cmd := &cobra.Command{
		Use:   "set",
		Short: "Set the first PIN of a key that has none",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return d.withSession(cmd, func(ctx context.Context, s *session) error {
				if s.PINSet() {
					return fmt.Errorf("this key has a PIN already; use `vkey pin change`")
				}
				pin, err := readNewPIN(newFile)
				if err != nil {
					return err
				}
				if err := s.SetPIN(ctx, s.Protocol(), pin); err != nil {
					return ctapError(err)
				}
				fmt.Fprintln(cmd.OutOrStdout(), "vkey: PIN set")
				return nil
			})
		},
	}
	d.addFlags(cmd, false, false)
	addNewPINFlag(cmd, &newFile)
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
			return d.withSession(cmd, func(ctx context.Context, s *session) error {
				if !s.PINSet() {
					return fmt.Errorf("this key has no PIN yet; use `vkey pin set`")
				}
				old, err := readPIN(d.pinFile, "VKEY_PIN", "Current PIN: ")
				if err != nil {
					return err
				}
				pin, err := readNewPIN(newFile)
				if err != nil {
					return err
				}
				if err := s.ChangePIN(ctx, s.Protocol(), old, pin); err != nil {
					return ctapError(err)
				}
				fmt.Fprintln(cmd.OutOrStdout(), "vkey: PIN changed")
				return nil
			})
		},
	}
	d.addFlags(cmd, true, false)
	addNewPINFlag(cmd, &newFile)
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
			return d.withSession(cmd, func(ctx context.Context, s *session) error {
				n, err := s.PINRetries(ctx)
				if err != nil {
					return ctapError(err)
				}
				v := retriesJSON{PINSet: s.PINSet(), Retries: n}
				w := cmd.OutOrStdout()
				return d.print(w, v, func() error {
					if !v.PINSet {
						fmt.Fprintf(w, "no PIN set (%d attempts once set)\n", n)
						return nil
					}
					fmt.Fprintf(w, "%d PIN attempts left\n", n)
					return nil
				})
			})
		},
	}
	d.addFlags(cmd, false, true)
	return cmd
}
