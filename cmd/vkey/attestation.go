package main

import (
	"context"
	"encoding/pem"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/vkey-dev/vkey/ctap2"
)

func newAttestationCommand() *cobra.Command {
	var name, out string
	var withMetadata bool
	cmd := &cobra.Command{
		Use:   "attestation [--out FILE] [--metadata]",
		Short: "Print the attestation root certificate of a running virtual key",
		Long: `Print, in PEM, the attestation root certificate of a running "vkey run": the
certificate a relying party adds to its trust anchors to accept the key's packed
(--attestation packed) and tpm attestation. Every key state has its own root,
made with it; authenticatorReset keeps it.

With --metadata it prints instead a FIDO Metadata Service (MDS3) metadata
statement for the key (AAGUID, attestation root, authenticatorGetInfo, key
protection, attestation types), for a relying party that checks attestation
against the Metadata Service.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withKeyControl(cmd, name, func(ctx context.Context, k keyControl) error {
				a, err := k.Attestation(ctx)
				if err != nil {
					return k.explain(err)
				}
				text, what := a.RootPEM, "attestation root"
				if withMetadata {
					stmt, err := metadataStatement(ctx, k.name, a.RootPEM)
					if err != nil {
						return err
					}
					text, what = string(stmt)+"\n", "metadata statement"
				}
				if out == "" {
					fmt.Fprint(cmd.OutOrStdout(), text)
					return nil
				}
				// A certificate or statement is public: readable by all, like any trust anchor.
				if err := os.WriteFile(out, []byte(text), 0o644); err != nil {
					return fmt.Errorf("writing the %s: %w", what, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "vkey: %s of %q written to %s\n", what, k.name, out)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "the running key (default: the only one running)")
	cmd.Flags().StringVar(&out, "out", "", "write the PEM certificate to this file instead of standard output")
	cmd.Flags().BoolVar(&withMetadata, "metadata", false, "print an MDS3 metadata statement (JSON) for the key instead of its root")
	return cmd
}

// metadataStatement builds the MDS3 statement of the running vkey name
// from its getInfo (read over CTAP, as from any key) and its root.
func metadataStatement(ctx context.Context, name, rootPEM string) ([]byte, error) {
	block, _ := pem.Decode([]byte(rootPEM))
	if block == nil {
		return nil, fmt.Errorf("vkey %q gave no PEM attestation root", name)
	}
	d := &deviceOptions{device: name}
	s, err := d.open(ctx)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return ctap2.MetadataStatement(s.Info, [][]byte{block.Bytes}, "")
}
