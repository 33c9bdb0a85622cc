package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"

	"github.com/spf13/pflag"
	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/internal/control"
	"github.com/vkey-dev/vkey/internal/presence"
)

// controlOptions are the control API flags of `vkey run`.
type controlOptions struct {
	addr string
}

func (c *controlOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&c.addr, "control-addr", "", "also serve the control API over HTTP on this loopback address (127.0.0.1:PORT)")
}

// transportAddress turns what `vkey run` prints ("LINK (-> /dev/pts/N)")
// into an address hid.Dial accepts.
func transportAddress(where string) string {
	if i := strings.Index(where, " (-> "); i >= 0 {
		return where[:i]
	}
	return where
}

// start serves the control API on the key's socket (and on --control-addr)
// until ctx is done; stop waits for the servers to end.
func (c *controlOptions) start(ctx context.Context, name, where string, a *ctap2.Authenticator, broker *presence.Broker, uv *presence.Verifier, hub *control.Hub, logger *slog.Logger, stdout io.Writer) (stop func(), err error) {
	srv := control.New(control.Config{Name: name, Transport: transportAddress(where), Authenticator: a,
		Presence: broker, UV: uv, Hub: hub, Logger: logger})
	path := controlSocketPath(name)
	var lns []net.Listener
	ln, err := control.ListenUnix(path)
	if err != nil {
		return nil, err
	}
	lns = append(lns, ln)
	fmt.Fprintf(stdout, "vkey: control API on %s\n", path)
	if c.addr != "" {
		tl, err := control.ListenLoopback(c.addr)
		if err != nil {
			ln.Close()
			return nil, withExitCode(exitUsage, err)
		}
		lns = append(lns, tl)
		fmt.Fprintf(stdout, "vkey: control API on http://%s\n", tl.Addr())
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{}, len(lns))
	for _, l := range lns {
		go func() {
			if err := srv.Serve(ctx, l); err != nil {
				logger.Error("control API stopped", "err", err)
			}
			done <- struct{}{}
		}()
	}
	return func() {
		cancel()
		for range lns {
			<-done
		}
	}, nil
}
