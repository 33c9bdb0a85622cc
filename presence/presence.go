// Package presence decides user presence for a running vkey: automatic
// approval (CI), refusal, a terminal prompt, or waiting for a touch from
// `vkey touch`, the control API or SIGUSR1. A Broker implements
// ctap2.Presence; whatever the mode, a pending request can also be answered
// from outside (Approve, Deny), as touching a hardware key would.
package presence

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/internal/escape"
)

// Mode is how a Broker answers requests nobody answers from outside.
type Mode string

// Presence modes of `vkey run --presence`.
const (
	Auto   Mode = "auto"   // approve at once
	Deny   Mode = "deny"   // refuse at once
	Prompt Mode = "prompt" // ask on the terminal
	Touch  Mode = "touch"  // wait for Approve/Deny (vkey touch, control API, SIGUSR1)
)

// DefaultTimeout is how long a request waits for an answer before it fails
// with CTAP2_ERR_USER_ACTION_TIMEOUT.
const DefaultTimeout = 30 * time.Second

// ParseMode validates a --presence value.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case Auto, Deny, Prompt, Touch:
		return m, nil
	}
	return "", fmt.Errorf("unknown presence mode %q (want auto, prompt, touch or deny)", s)
}

// Options configure a Broker.
type Options struct {
	Mode Mode
	// Timeout bounds each request (DefaultTimeout if 0).
	Timeout time.Duration
	// Terminal is where Prompt asks (its reader gives the answers).
	Terminal io.ReadWriter
}

// Broker answers presence requests. It is safe for concurrent use.
type Broker struct {
	opts Options

	mu      sync.Mutex
	mode    Mode
	pending *pending
	// prompt serialises terminal prompts.
	prompt sync.Mutex
}

type pending struct {
	req    ctap2.PresenceRequest
	answer chan error // buffered 1
}

// New returns a Broker.
func New(opts Options) *Broker {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Mode == "" {
		opts.Mode = Touch
	}
	return &Broker{opts: opts, mode: opts.Mode}
}

// Mode returns the current mode.
func (b *Broker) Mode() Mode {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.mode
}

// SetMode switches the mode (the control API turns automatic approval on
// and off).
func (b *Broker) SetMode(m Mode) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.mode = m
}

// Pending returns the request waiting for an answer, if any.
func (b *Broker) Pending() (ctap2.PresenceRequest, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pending == nil {
		return ctap2.PresenceRequest{}, false
	}
	return b.pending.req, true
}

// Approve answers the pending request with a touch. It reports whether a
// request was waiting.
func (b *Broker) Approve() bool { return b.answer(nil) }

// Deny refuses the pending request. It reports whether a request was waiting.
func (b *Broker) Deny() bool { return b.answer(ctap2.ErrPresenceDenied) }

func (b *Broker) answer(err error) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pending == nil {
		return false
	}
	select {
	case b.pending.answer <- err:
	default:
	}
	return true
}

// Request implements ctap2.Presence.
//
// Once a request waits for an answer it calls ctap2.PresenceWaiting, so
// that the authenticator's observer sees PresenceRequested (and the
// CTAPHID layer sends KEEPALIVE(UPNEEDED)) only when Approve can answer it.
func (b *Broker) Request(ctx context.Context, req ctap2.PresenceRequest) error {
	b.mu.Lock()
	mode := b.mode
	b.mu.Unlock()
	switch mode {
	case Auto:
		return ctx.Err()
	case Deny:
		if err := ctx.Err(); err != nil {
			return err
		}
		return ctap2.ErrPresenceDenied
	}
	p := &pending{req: req, answer: make(chan error, 1)}
	b.mu.Lock()
	if b.pending != nil {
		b.mu.Unlock()
		return ctap2.ErrPresenceDenied // one request at a time, as on a key
	}
	b.pending = p
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.pending = nil
		b.mu.Unlock()
	}()
	ctap2.PresenceWaiting(ctx)
	ctx, cancel := context.WithTimeoutCause(ctx, b.opts.Timeout, ctap2.ErrPresenceTimeout)
	defer cancel()
	if mode == Prompt && b.opts.Terminal != nil {
		go b.ask(ctx, p)
	}
	select {
	case err := <-p.answer:
		return err
	case <-ctx.Done():
		if context.Cause(ctx) == ctap2.ErrPresenceTimeout {
			return ctap2.ErrPresenceTimeout
		}
		return ctx.Err()
	}
}

// ask prompts on the terminal and answers p with what the user types.
func (b *Broker) ask(ctx context.Context, p *pending) {
	b.prompt.Lock()
	defer b.prompt.Unlock()
	if ctx.Err() != nil {
		return
	}
	// Everything from the request is escaped: an RP ID or user name must
	// not rewrite this line (issue 11, point 9).
	what := escape.Terminal(p.req.Command)
	if p.req.RPID != "" {
		what += " for " + escape.Terminal(p.req.RPID)
	}
	if p.req.UserName != "" {
		what += " (" + escape.Terminal(p.req.UserName) + ")"
	}
	fmt.Fprintf(b.opts.Terminal, "vkey: touch requested: %s. Approve? [y/N] ", what)
	line, _ := bufio.NewReader(b.opts.Terminal).ReadString('\n')
	var err error = ctap2.ErrPresenceDenied
	if s := strings.ToLower(strings.TrimSpace(line)); s == "y" || s == "yes" {
		err = nil
	}
	select {
	case p.answer <- err:
	default:
	}
}
