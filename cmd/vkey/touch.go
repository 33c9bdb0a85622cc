package main

import (
	"context"
	"fmt"
	"net/http"

	"github.com/spf13/cobra"
	"github.com/vkey-dev/vkey/internal/control"
	"github.com/vkey-dev/vkey/internal/escape"
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
			return withKeyControl(cmd, name, func(ctx context.Context, k keyControl) error {
				var st *control.PresenceState
				var err error
				if deny {
					st, err = k.Deny(ctx)
				} else {
					st, err = k.Approve(ctx)
				}
				if apiStatus(err) == http.StatusConflict {
					return fmt.Errorf("the key %q has no pending request to answer", k.name)
				}
				if err != nil {
					return k.explain(err)
				}
				verb := "approved"
				if deny {
					verb = "denied"
				}
				what := "the request"
				if st.Pending != nil {
					what = escape.Terminal(st.Pending.Command) + forRP(st.Pending.RPID)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "vkey: %s %s\n", verb, what)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&deny, "deny", false, "refuse the request instead of approving it")
	cmd.Flags().StringVar(&name, "name", "", "the running key (default: the only one running)")
	return cmd
}
