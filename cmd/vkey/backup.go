package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/spf13/cobra"
	"github.com/vkey-dev/vkey"
	"github.com/vkey-dev/vkey/keystore"
)

// backupOptions select the state folder, as `vkey run` does.
type backupOptions struct {
	state          string
	name           string
	passphraseFile string
	tpmSpec        string
	secretFile     string
	json           bool
}

func (b *backupOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&b.state, "state", "", "state folder (default $XDG_DATA_HOME/vkey/NAME)")
	f.StringVar(&b.name, "name", vkey.DefaultName, "name of the key")
	f.StringVar(&b.passphraseFile, "passphrase-file", "", "the passphrase that protects the state (as given to vkey run)")
	f.StringVar(&b.tpmSpec, "tpm", "", "TPM that seals the state's master key: /dev/tpmrm0 (default) or swtpm:SOCKET")
	f.StringVar(&b.secretFile, "backup-passphrase-file", "", "read the backup file's passphrase from this file (or set VKEY_BACKUP_PASSPHRASE); default: ask on the terminal")
	f.BoolVar(&b.json, "json", false, "print JSON (docs/cli.md)")
}

// openState opens the key's state folder, which no running vkey may hold.
func (b *backupOptions) openState(ctx context.Context, stderr io.Writer) (keystore.Store, func(), error) {
	opts, err := stateOptions(b.name, b.state, false, b.passphraseFile)
	if err != nil {
		return nil, nil, err
	}
	if !keystore.HasState(opts.StateDir) {
		return nil, nil, fmt.Errorf("no vkey state in %s (has `vkey run --name %s` ever run? --ephemeral keys keep none)", opts.StateDir, b.name)
	}
	opts.Keys, opts.TPM = vkey.AutoKeys, b.tpmSpec
	opts.Notify = func(note string) { fmt.Fprintf(stderr, "vkey: %s\n", note) }
	store, closeState, err := vkey.OpenState(ctx, opts)
	var locked *keystore.LockedError
	if errors.As(err, &locked) {
		return nil, nil, fmt.Errorf("%w (backup works on the state of a key that is not running: stop it first)", err)
	}
	return store, closeState, err
}

func newBackupCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Export or import the syncable passkeys of a vkey, encrypted with a passphrase",
		Long: `Export the syncable passkeys of a vkey (never the device-bound ones) into a file
encrypted with a passphrase (argon2id and AES-256-GCM), or import such a file
into another vkey. Both work on the state folder of a key that is not running.`,
	}
	cmd.AddCommand(newBackupExportCommand(), newBackupImportCommand())
	return cmd
}

// exportJSON is `vkey backup export --json`.
type exportJSON struct {
	File     string `json:"file"`
	Exported int    `json:"exported"`
}

func newBackupExportCommand() *cobra.Command {
	b := &backupOptions{}
	var out string
	var ids []string
	var force bool
	cmd := &cobra.Command{
		Use:   "export --out FILE",
		Short: "Write the syncable passkeys into an encrypted backup file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usageError("--out FILE is required")
			}
			if _, err := os.Lstat(out); err == nil && !force {
				return fmt.Errorf("%s exists already: choose another --out, or add --force to replace it", out)
			}
			var sel [][]byte
			for _, s := range ids {
				id, err := parseID(s)
				if err != nil {
					return err
				}
				sel = append(sel, id)
			}
			store, closeStore, err := b.openState(cmd.Context(), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer closeStore()
			pass, err := readNewSecret(b.secretFile, "VKEY_BACKUP_PASSPHRASE", "backup passphrase")
			if err != nil {
				return err
			}
			// The credentials are marked backed up (BS) only once the file
			// is safely written: a failed export changes nothing.
			n, err := keystore.ExportFile(store, sel, []byte(pass), out, force)
			var db *keystore.DeviceBoundError
			switch {
			case errors.As(err, &db):
				return fmt.Errorf("%w: leave its --id out: only passkeys made under `vkey run --passkeys syncable` can be exported", err)
			case errors.Is(err, fs.ErrExist):
				return fmt.Errorf("%s exists already: choose another --out, or add --force to replace it", out)
			case err != nil:
				return err
			}
			if b.json {
				return printJSON(cmd.OutOrStdout(), exportJSON{File: out, Exported: n})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "vkey: exported %d syncable passkeys to %s\n", n, out)
			return nil
		},
	}
	b.addFlags(cmd)
	cmd.Flags().StringVarP(&out, "out", "o", "", "the backup file to write (mode 0600)")
	cmd.Flags().StringSliceVar(&ids, "id", nil, "export only this credential ID (repeatable)")
	cmd.Flags().BoolVar(&force, "force", false, "replace --out if it exists")
	return cmd
}

// importItemJSON is one credential of `vkey backup import --json`.
type importItemJSON struct {
	CredentialID string `json:"credentialId"`
	RPID         string `json:"rpId"`
	UserName     string `json:"userName"`
	Reason       string `json:"reason,omitempty"`
}

// importJSON is `vkey backup import --json`.
type importJSON struct {
	Added   []importItemJSON `json:"added"`
	Skipped []importItemJSON `json:"skipped"`
	Refused []importItemJSON `json:"refused"`
}

func importItems(items []keystore.ImportItem) []importItemJSON {
	out := []importItemJSON{}
	for _, it := range items {
		out = append(out, importItemJSON{CredentialID: b64url(it.ID), RPID: it.RPID, UserName: it.UserName, Reason: it.Reason})
	}
	return out
}

func newBackupImportCommand() *cobra.Command {
	b := &backupOptions{}
	cmd := &cobra.Command{
		Use:   "import FILE",
		Short: "Merge the passkeys of a backup file into this vkey",
		Long: `Merge the passkeys of a backup file into this vkey: new ones are added, ones
already here keep the higher signature counter, device-bound ones are refused.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return fmt.Errorf("reading the backup: %w", err)
			}
			store, closeStore, err := b.openState(cmd.Context(), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer closeStore()
			pass, err := readPIN(b.secretFile, "VKEY_BACKUP_PASSPHRASE", "Backup passphrase: ")
			if err != nil {
				return err
			}
			rep, err := keystore.Import(store, data, []byte(pass))
			if err != nil {
				return err
			}
			v := importJSON{Added: importItems(rep.Added), Skipped: importItems(rep.Skipped), Refused: importItems(rep.Refused)}
			w := cmd.OutOrStdout()
			if b.json {
				return printJSON(w, v)
			}
			t := newTable(w, "RESULT", "RP", "USER", "CREDENTIAL ID", "NOTE")
			for _, g := range []struct {
				what  string
				items []importItemJSON
			}{{"added", v.Added}, {"skipped", v.Skipped}, {"refused", v.Refused}} {
				for _, it := range g.items {
					t.row(g.what, it.RPID, it.UserName, it.CredentialID, it.Reason)
				}
			}
			if err := t.flush(); err != nil {
				return err
			}
			fmt.Fprintf(w, "vkey: %d added, %d skipped, %d refused\n", len(v.Added), len(v.Skipped), len(v.Refused))
			return nil
		},
	}
	b.addFlags(cmd)
	return cmd
}
