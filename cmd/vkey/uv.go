package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/spf13/cobra"
	"github.com/vkey-dev/vkey/internal/control"
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
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			sock, err := touchSocket(ctx, name)
			if err != nil {
				return err
			}
			err = control.NewUnixClient(sock).SetUV(ctx, verified)
			var apiErr *control.APIError
			switch {
			case errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound:
				return fmt.Errorf("the key %q has no built-in user verification: start it with `vkey run --uv builtin`", keyName(name, sock))
			case errors.Is(err, control.ErrNotRunning):
				return withExitCode(exitNoDevice, fmt.Errorf("no vkey named %q is running (start it with `vkey run --name %s`; `vkey devices` lists the running ones)", keyName(name, sock), keyName(name, sock)))
			case err != nil:
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "vkey: built-in user verification will answer %s\n", args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "the running key (default: the only one running)")
	return cmd
}
