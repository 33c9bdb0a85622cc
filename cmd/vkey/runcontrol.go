package main

import (
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/spf13/pflag"
	"github.com/vkey-dev/vkey"
	"github.com/vkey-dev/vkey/internal/control"
)

// controlOptions are the control API flags of `vkey run`.
type controlOptions struct {
	addr string
}

func (c *controlOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&c.addr, "control-addr", "", "also serve the control API over HTTP on this loopback address (127.0.0.1:PORT)")
}

// listen opens the control API's listeners: the key's socket, and
// --control-addr if given. `vkey run` does it before anything else, so that
// a second key of the same name stops before it creates a device.
func (c *controlOptions) listen(name string, stdout io.Writer) ([]net.Listener, error) {
	path := vkey.DefaultControlSocket(name)
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
