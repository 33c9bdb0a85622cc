package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/vkey-dev/vkey"
	"github.com/vkey-dev/vkey/internal/control"
)

// keyControl is the control API of one running `vkey run`, for the
// commands that only a virtual key answers (touch, uv, attestation).
type keyControl struct {
	*control.Client
	name string // the key's --name
}

// withKeyControl runs fn, within 10 seconds, on the control API of the
// running key called name (openKeyControl).
func withKeyControl(cmd *cobra.Command, name string, fn func(context.Context, keyControl) error) error {
	ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
	defer cancel()
	k, err := openKeyControl(ctx, name)
	if err != nil {
		return err
	}
	return fn(ctx, k)
}

// openKeyControl finds the running key called name, or the only one
// running when name is empty.
func openKeyControl(ctx context.Context, name string) (keyControl, error) {
	if name != "" {
		if strings.ContainsAny(name, "/\x00") {
			return keyControl{}, usageError("--name must be a name without slashes")
		}
		return keyControl{Client: control.NewUnixClient(vkey.DefaultControlSocket(name)), name: name}, nil
	}
	k, err := vkey.OnlyRunningKey(ctx)
	var choice *vkey.ChoiceError
	switch {
	case errors.Is(err, vkey.ErrNoDevice):
		return keyControl{}, withExitCode(exitNoDevice, errors.New("no vkey is running (start one with `vkey run`)"))
	case errors.As(err, &choice):
		return keyControl{}, usageError("%d vkeys are running (%s): choose one with --name", len(choice.VKeys), strings.Join(choice.VKeys, ", "))
	case err != nil:
		return keyControl{}, err
	}
	return keyControl{Client: control.NewUnixClient(k.Socket), name: k.Name}, nil
}

// explain turns a key that does not answer into the sentence that says how
// to start it; other errors pass unchanged.
func (k keyControl) explain(err error) error {
	if errors.Is(err, control.ErrNotRunning) {
		return withExitCode(exitNoDevice, fmt.Errorf("no vkey named %q is running (start it with `vkey run --name %s`; `vkey devices` lists the running ones)", k.name, k.name))
	}
	return err
}

// apiStatus is the HTTP status of a control API refusal, or 0.
func apiStatus(err error) int {
	var apiErr *control.APIError
	if errors.As(err, &apiErr) {
		return apiErr.Status
	}
	return 0
}
