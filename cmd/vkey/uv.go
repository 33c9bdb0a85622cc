package main

import (
	"context"
	"fmt"
	"net/http"

	"github.com/spf13/cobra"
)

func newUVCommand() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:       "uv verified|not-verified",
		Short:     "Set the outcome of a running key's built-in user verification (vkey run --uv builtin)",
		Long:      `Set whether the built-in user verification of a running "vkey run --uv builtin" succeeds, as a test harness would present a good or a bad fingerprint.`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"verified", "not-verified"},
		RunE: func(cmd *cobra.Command, args []string) error {
			var verified bool
			switch args[0] {
			case "verified":
				verified = true
			case "not-verified":
			default:
				return usageError("want verified or not-verified, not %q", args[0])
			}
			return withKeyControl(cmd, name, func(ctx context.Context, k keyControl) error {
				err := k.SetUV(ctx, verified)
				if apiStatus(err) == http.StatusNotFound {
					return fmt.Errorf("the key %q has no built-in user verification: start it with `vkey run --uv builtin`", k.name)
				}
				if err != nil {
					return k.explain(err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "vkey: built-in user verification will answer %s\n", args[0])
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "the running key (default: the only one running)")
	return cmd
}
