package vkey

import (
	"context"
	"fmt"
	"time"

	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/presence"
)

// openDesktop connects the broker to the desktop's notification service
// (Options.Desktop). Without one it says so through notify and returns
// nil: the key then waits for a touch from elsewhere (`vkey touch`, the
// control API), as in presence.Touch mode.
func openDesktop(ctx context.Context, broker *presence.Broker, notify func(string)) *presence.Desktop {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	d, err := presence.NewDesktop(cctx, presence.DesktopOptions{Approve: broker.Approve, Deny: broker.Deny})
	if err != nil {
		notify(fmt.Sprintf("--presence desktop cannot ask the desktop (%v); answer with `vkey touch` instead, or use --presence prompt in a terminal", err))
		return nil
	}
	if !d.Actions {
		notify("the desktop's notification service shows no Approve/Deny buttons; answer with `vkey touch` (or `vkey touch --deny`)")
	}
	return d
}

// desktopObserver shows a notification for each presence request and
// withdraws it once the request ends.
type desktopObserver struct {
	d      *presence.Desktop
	notify func(string)
}

// Observe implements ctap2.Observer.
func (o desktopObserver) Observe(ctx context.Context, e ctap2.Event) {
	switch e := e.(type) {
	case ctap2.PresenceRequested:
		if err := o.d.Ask(ctx, e.Request); err != nil {
			o.notify(fmt.Sprintf("%v; answer with `vkey touch`", err))
		}
	case ctap2.PresenceAnswered, ctap2.PresenceTimedOut:
		o.d.Done()
	}
}
