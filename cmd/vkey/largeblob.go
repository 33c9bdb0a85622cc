package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/ctap2/client"
)

func newLargeBlobCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "largeblob",
		Short: "Read, write or delete the large blob of a passkey",
		Long: `Read, write or delete the large blob stored with a passkey (CTAP 2.1 section
6.10: the blob is kept compressed and encrypted under the passkey's
largeBlobKey in the key's large-blob array). The passkey must have been made
with the largeBlobKey extension. Needs the PIN.`,
	}
	cmd.AddCommand(newLargeBlobGetCommand(), newLargeBlobSetCommand(), newLargeBlobDeleteCommand())
	return cmd
}

// withLargeBlobKey is withSession for the passkey whose ID is arg: fn gets
// its largeBlobKey (client.Session.LargeBlobKey) and a token with perms,
// and the errors are made for people.
func (d *deviceOptions) withLargeBlobKey(cmd *cobra.Command, arg string, perms ctap2.Permission, fn func(ctx context.Context, s *session, id, key []byte, tok *client.Token) error) error {
	id, err := parseID(arg)
	if err != nil {
		return err
	}
	return d.withSession(cmd, func(ctx context.Context, s *session) error {
		key, tok, err := s.LargeBlobKey(ctx, id, perms)
		switch {
		case errors.Is(err, client.ErrNoCredential):
			return noPasskey(id)
		case errors.Is(err, client.ErrNoLargeBlobKey):
			return fmt.Errorf("the passkey %s has no largeBlobKey (it was made without the largeBlobKey extension)", b64url(id))
		case err != nil:
			return ctapError(err)
		}
		return fn(ctx, s, id, key, tok)
	})
}

// noLargeBlob turns client.ErrNoLargeBlob into a sentence about passkey id.
func noLargeBlob(id []byte, err error) error {
	if errors.Is(err, client.ErrNoLargeBlob) {
		return fmt.Errorf("the passkey %s has no large blob", b64url(id))
	}
	return ctapError(err)
}

// largeBlobJSON is `vkey largeblob get --json`.
type largeBlobJSON struct {
	CredentialID string `json:"credentialId"`
	LargeBlob    string `json:"largeBlob"` // base64url
}

func newLargeBlobGetCommand() *cobra.Command {
	d := &deviceOptions{}
	var out string
	cmd := &cobra.Command{
		Use:   "get ID",
		Short: "Print (or --out FILE) the large blob of a passkey",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return d.withLargeBlobKey(cmd, args[0], 0, func(ctx context.Context, s *session, id, key []byte, _ *client.Token) error {
				blob, err := s.LargeBlob(ctx, key)
				if err != nil {
					return noLargeBlob(id, err)
				}
				w := cmd.OutOrStdout()
				return d.print(w, largeBlobJSON{CredentialID: b64url(id), LargeBlob: b64url(blob)}, func() error {
					if out != "" && out != "-" {
						if err := os.WriteFile(out, blob, 0o600); err != nil {
							return fmt.Errorf("writing the large blob: %w", err)
						}
						return nil
					}
					_, err := w.Write(blob)
					return err
				})
			})
		},
	}
	d.addFlags(cmd, true, true)
	cmd.Flags().StringVarP(&out, "out", "o", "", "write the blob to this file (default: standard output)")
	return cmd
}

func newLargeBlobSetCommand() *cobra.Command {
	d := &deviceOptions{}
	cmd := &cobra.Command{
		Use:   "set ID [FILE]",
		Short: "Store FILE (default: standard input) as the large blob of a passkey",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := parseID(args[0]); err != nil {
				return err
			}
			var data []byte
			var err error
			if len(args) == 2 && args[1] != "-" {
				data, err = os.ReadFile(args[1])
			} else {
				data, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), 1<<20))
			}
			if err != nil {
				return fmt.Errorf("reading the blob: %w", err)
			}
			return d.withLargeBlobKey(cmd, args[0], ctap2.PermLargeBlobWrite, func(ctx context.Context, s *session, id, key []byte, tok *client.Token) error {
				if err := s.PutLargeBlob(ctx, tok, key, data); err != nil {
					return ctapError(err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "vkey: stored %d bytes with %s\n", len(data), b64url(id))
				return nil
			})
		},
	}
	d.addFlags(cmd, true, false)
	return cmd
}

func newLargeBlobDeleteCommand() *cobra.Command {
	d := &deviceOptions{}
	cmd := &cobra.Command{
		Use:   "delete ID",
		Short: "Delete the large blob of a passkey",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return d.withLargeBlobKey(cmd, args[0], ctap2.PermLargeBlobWrite, func(ctx context.Context, s *session, id, key []byte, tok *client.Token) error {
				if err := s.DeleteLargeBlob(ctx, tok, key); err != nil {
					return noLargeBlob(id, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "vkey: deleted the large blob of %s\n", b64url(id))
				return nil
			})
		},
	}
	d.addFlags(cmd, true, false)
	return cmd
}
