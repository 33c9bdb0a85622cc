package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
)

func newAttestationCommand() *cobra.Command {
	var name, out string
	cmd := &cobra.Command{
		Use:   "attestation [--out FILE]",
		Short: "Print the attestation root certificate of a running virtual key",
		Long: `Print, in PEM, the attestation root certificate of a running "vkey run": the
certificate a relying party adds to its trust anchors to accept the key's packed
(--attestation packed) and tpm attestation. Every key state has its own root,
made with it; authenticatorReset keeps it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			k, err := openKeyControl(ctx, name)
			if err != nil {
				return err
			}
			a, err := k.Attestation(ctx)
			if err != nil {
				return k.explain(err)
			}
			if out == "" {
				fmt.Fprint(cmd.OutOrStdout(), a.RootPEM)
				return nil
			}
			// A certificate is public: readable by all, like any trust anchor.
			if err := os.WriteFile(out, []byte(a.RootPEM), 0o644); err != nil {
				return fmt.Errorf("writing the certificate: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "vkey: attestation root of %q written to %s\n", k.name, out)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "the running key (default: the only one running)")
	cmd.Flags().StringVar(&out, "out", "", "write the PEM certificate to this file instead of standard output")
	return cmd
}
