package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/ctap2/client"
	"github.com/vkey-dev/vkey/keystore"
)

func newCredsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "creds",
		Short: "List, delete and rename the passkeys (discoverable credentials) on a key",
		Long: `Manage the discoverable credentials (passkeys) of a key through CTAP 2.1
credential management. The key must have a PIN. Credential IDs are printed in
base64url; base64 (as fido2-token prints them) is accepted too.`,
	}
	cmd.AddCommand(newCredsListCommand(), newCredsDeleteCommand(), newCredsUpdateCommand())
	return cmd
}

// withCredentialManager is withSession with a credential management session
// open on the key (client.Session.CredentialManager: a PIN token with the
// cm permission; the preview command on a key that has only it).
func (d *deviceOptions) withCredentialManager(cmd *cobra.Command, fn func(ctx context.Context, m *client.CredMgmt) error) error {
	return d.withSession(cmd, func(ctx context.Context, s *session) error {
		m, _, err := s.CredentialManager(ctx, 0)
		if err != nil {
			return ctapError(err)
		}
		return fn(ctx, m)
	})
}

// noPasskey is the error for a credential ID that the key does not hold.
func noPasskey(id []byte) error {
	return fmt.Errorf("no passkey with ID %s on this key", b64url(id))
}

// findCredential enumerates the credentials and returns the one with id.
func findCredential(ctx context.Context, m *client.CredMgmt, id []byte) (*client.Credential, error) {
	c, err := m.Find(ctx, id)
	if errors.Is(err, client.ErrNoCredential) {
		return nil, noPasskey(id)
	}
	return c, ctapError(err)
}

// credentialJSON is one credential of `vkey creds list --json`.
type credentialJSON struct {
	RPID            string `json:"rpId"`
	CredentialID    string `json:"credentialId"`
	UserID          string `json:"userId"`
	UserName        string `json:"userName"`
	UserDisplayName string `json:"userDisplayName"`
	Algorithm       string `json:"algorithm"`
	CredProtect     uint64 `json:"credProtect"`
	LargeBlobKey    bool   `json:"largeBlobKey"`
}

// credsListJSON is `vkey creds list --json`.
type credsListJSON struct {
	Existing    uint64           `json:"existing"`
	Remaining   uint64           `json:"remaining"`
	Credentials []credentialJSON `json:"credentials"`
}

func newCredsListCommand() *cobra.Command {
	d := &deviceOptions{}
	var rp string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the passkeys, optionally of one relying party",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return d.withCredentialManager(cmd, func(ctx context.Context, m *client.CredMgmt) error {
				existing, remaining, err := m.Metadata(ctx)
				if err != nil {
					return ctapError(err)
				}
				var creds []client.Credential
				if rp != "" {
					creds, err = m.Credentials(ctx, client.RPByID(rp))
				} else {
					creds, err = m.All(ctx)
				}
				if err != nil {
					return ctapError(err)
				}
				out := credsListJSON{Existing: existing, Remaining: remaining, Credentials: []credentialJSON{}}
				for _, c := range creds {
					out.Credentials = append(out.Credentials, credentialJSON{
						RPID: c.RPID, CredentialID: b64url(c.ID), UserID: b64url(c.User.ID),
						UserName: c.User.Name, UserDisplayName: c.User.DisplayName,
						Algorithm: keystore.Algorithm(c.Algorithm()).Name(), CredProtect: c.CredProtect, LargeBlobKey: c.LargeBlobKey != nil,
					})
				}
				w := cmd.OutOrStdout()
				return d.print(w, out, func() error {
					if len(out.Credentials) == 0 {
						fmt.Fprintf(w, "no passkeys (room for %d)\n", remaining)
						return nil
					}
					t := newTable(w, "RP", "USER", "DISPLAY NAME", "ALG", "PROTECT", "CREDENTIAL ID")
					for _, c := range out.Credentials {
						t.row(c.RPID, c.UserName, c.UserDisplayName, c.Algorithm, strconv.FormatUint(c.CredProtect, 10), c.CredentialID)
					}
					if err := t.flush(); err != nil {
						return err
					}
					fmt.Fprintf(w, "%d passkeys, room for %d more\n", existing, remaining)
					return nil
				})
			})
		},
	}
	d.addFlags(cmd, true, true)
	cmd.Flags().StringVar(&rp, "rp", "", "only the passkeys of this relying party ID")
	return cmd
}

func newCredsDeleteCommand() *cobra.Command {
	d := &deviceOptions{}
	cmd := &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a passkey",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID(args[0])
			if err != nil {
				return err
			}
			return d.withCredentialManager(cmd, func(ctx context.Context, m *client.CredMgmt) error {
				if err := m.Delete(ctx, id); err != nil {
					if errors.Is(err, ctap2.ErrNoCredentials) {
						return noPasskey(id)
					}
					return ctapError(err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "vkey: deleted %s\n", b64url(id))
				return nil
			})
		},
	}
	d.addFlags(cmd, true, false)
	return cmd
}

func newCredsUpdateCommand() *cobra.Command {
	d := &deviceOptions{}
	var name, displayName string
	cmd := &cobra.Command{
		Use:   "update ID",
		Short: "Change the user name and display name stored with a passkey",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID(args[0])
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("name") && !cmd.Flags().Changed("display-name") {
				return usageError("nothing to change: give --name and/or --display-name")
			}
			return d.withCredentialManager(cmd, func(ctx context.Context, m *client.CredMgmt) error {
				c, err := findCredential(ctx, m, id)
				if err != nil {
					return err
				}
				user := c.User
				if cmd.Flags().Changed("name") {
					user.Name = name
				}
				if cmd.Flags().Changed("display-name") {
					user.DisplayName = displayName
				}
				if err := m.UpdateUser(ctx, id, user); err != nil {
					return ctapError(err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "vkey: updated %s\n", b64url(id))
				return nil
			})
		},
	}
	d.addFlags(cmd, true, false)
	cmd.Flags().StringVar(&name, "name", "", "the new user name")
	cmd.Flags().StringVar(&displayName, "display-name", "", "the new display name")
	return cmd
}
