package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"

	"github.com/spf13/pflag"
	"github.com/vkey-dev/vkey/internal/control"
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

// listen opens the control API's listeners: the key's socket, and
// --control-addr if given. `vkey run` does it before anything else, so that
// a second key of the same name stops before it creates a device.
func (c *controlOptions) listen(name string, stdout io.Writer) ([]net.Listener, error) {
	path := controlSocketPath(name)
	ln, err := control.ListenUnix(path)
	if errors.Is(err, control.ErrSocketInUse) {
		return nil, fmt.Errorf("a vkey named %q is already running (its control socket is %s): give this one another name with --name NAME", name, path)
	}
	if err != nil {
		return nil, err
	}
	lns := []net.Listener{ln}
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
	return lns, nil
}

// serveControl serves the control API on lns until ctx is done; stop waits for
// the servers to end (and closes the listeners).
func serveControl(ctx context.Context, lns []net.Listener, cfg control.Config, logger *slog.Logger) (stop func()) {
	srv := control.New(cfg)
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
	}
}
