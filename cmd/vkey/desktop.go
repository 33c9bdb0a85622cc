package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/presence"
)

// openDesktop connects `vkey run --presence desktop` to the desktop's
// notification service. Without one it says so and returns nil: the key
// then waits for `vkey touch`, as with --presence touch.
func openDesktop(ctx context.Context, broker *presence.Broker, stderr io.Writer) *presence.Desktop {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	d, err := presence.NewDesktop(cctx, presence.DesktopOptions{Approve: broker.Approve, Deny: broker.Deny})
	if err != nil {
		fmt.Fprintf(stderr, "vkey: --presence desktop cannot ask the desktop (%v); answer with `vkey touch` instead, or use --presence prompt in a terminal\n", err)
		return nil
	}
	if !d.Actions {
		fmt.Fprintln(stderr, "vkey: the desktop's notification service shows no Approve/Deny buttons; answer with `vkey touch` (or `vkey touch --deny`)")
	}
	return d
}

// desktopAsk shows the notification for req when there is a desktop.
func desktopAsk(ctx context.Context, d *presence.Desktop, req ctap2.PresenceRequest, stderr io.Writer) {
	if d == nil {
		return
	}
	if err := d.Ask(ctx, req); err != nil {
		fmt.Fprintf(stderr, "vkey: %v; answer with `vkey touch`\n", err)
	}
}
