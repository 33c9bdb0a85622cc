package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/vkey-dev/vkey/internal/control"
)

func newTouchCommand() *cobra.Command {
	var deny bool
	var name string
	cmd := &cobra.Command{
		Use:   "touch",
		Short: "Touch the running virtual key: approve (or --deny) its pending request",
		Long: `Answer the presence request a running "vkey run" is waiting for, as touching a
hardware key would. With --deny the request fails with CTAP2_ERR_OPERATION_DENIED.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			sock, err := touchSocket(ctx, name)
			if err != nil {
				return err
			}
			c := control.NewUnixClient(sock)
			var st *control.PresenceState
			if deny {
				st, err = c.Deny(ctx)
			} else {
				st, err = c.Approve(ctx)
			}
			var apiErr *control.APIError
			switch {
			case errors.As(err, &apiErr) && apiErr.Status == http.StatusConflict:
				return fmt.Errorf("the key %q has no pending request to answer", keyName(name, sock))
			case errors.Is(err, control.ErrNotRunning):
				return withExitCode(exitNoDevice, fmt.Errorf("no vkey named %q is running (start it with `vkey run --name %s`; `vkey devices` lists the running ones)", keyName(name, sock), keyName(name, sock)))
			case err != nil:
				return err
			}
			verb := "approved"
			if deny {
				verb = "denied"
			}
			what := "the request"
			if st.Pending != nil {
				what = st.Pending.Command + forRP(st.Pending.RPID)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "vkey: %s %s\n", verb, what)
			return nil
		},
	}
	cmd.Flags().BoolVar(&deny, "deny", false, "refuse the request instead of approving it")
	cmd.Flags().StringVar(&name, "name", "", "the running key (default: the only one running)")
	return cmd
}

// touchSocket finds the control socket of the key to touch.
func touchSocket(ctx context.Context, name string) (string, error) {
	if name != "" {
		if strings.ContainsAny(name, "/\x00") {
			return "", usageError("--name must be a name without slashes")
		}
		return controlSocketPath(name), nil
	}
	keys := runningKeys(ctx)
	switch len(keys) {
	case 0:
		return "", withExitCode(exitNoDevice, errors.New("no vkey is running (start one with `vkey run`)"))
	case 1:
		return keys[0].Socket, nil
	}
	var names []string
	for _, k := range keys {
		names = append(names, k.Info.Name)
	}
	return "", usageError("%d vkeys are running (%s): choose one with --name", len(keys), strings.Join(names, ", "))
}

func keyName(name, sock string) string {
	if name != "" {
		return name
	}
	return strings.TrimSuffix(sock[strings.LastIndex(sock, "/")+1:], ".sock")
}
