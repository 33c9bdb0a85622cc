package ctap2

import (
	"context"
	"errors"
	"sync"
)

// errGateBusy is what commandGate.enter reports when the command holding
// the gate waits for user presence.
var errGateBusy = errors.New("ctap2: another command waits for user presence")

// commandGate lets one command run at a time, as on a hardware key. A
// command that finds the gate taken waits for it, woken (not polling) when
// the holder leaves, or told busy at once when the holder starts waiting
// for user presence: it never waits behind a touch. The zero value is an
// open gate.
type commandGate struct {
	mu      sync.Mutex
	held    bool
	waiting bool          // the holder waits for user presence
	wake    chan struct{} // closed when held or waiting change; nil until a waiter needs it
}

// enter takes the gate. It returns errGateBusy when the holder waits for
// user presence, or ctx's error when ctx ends first; it takes nothing then.
func (g *commandGate) enter(ctx context.Context) error {
	for {
		g.mu.Lock()
		if !g.held {
			g.held = true
			g.mu.Unlock()
			return nil
		}
		if g.waiting {
			g.mu.Unlock()
			return errGateBusy
		}
		if g.wake == nil {
			g.wake = make(chan struct{})
		}
		wake := g.wake
		g.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// leave gives the gate up; the holder calls it once per successful enter.
func (g *commandGate) leave() {
	g.mu.Lock()
	g.held, g.waiting = false, false
	g.signal()
	g.mu.Unlock()
}

// setWaiting says whether the holder waits for user presence; the commands
// waiting to enter are told busy when it does.
func (g *commandGate) setWaiting(w bool) {
	g.mu.Lock()
	g.waiting = w
	if w {
		g.signal()
	}
	g.mu.Unlock()
}

// signal wakes the waiters, who look again; called with mu held.
func (g *commandGate) signal() {
	if g.wake != nil {
		close(g.wake)
		g.wake = nil
	}
}
