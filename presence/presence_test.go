package presence

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vkey-dev/vkey/ctap2"
)

func TestModes(t *testing.T) {
	ctx := context.Background()
	if err := New(Options{Mode: Auto}).Request(ctx, ctap2.PresenceRequest{}); err != nil {
		t.Errorf("auto: %v", err)
	}
	if err := New(Options{Mode: Deny}).Request(ctx, ctap2.PresenceRequest{}); !errors.Is(err, ctap2.ErrPresenceDenied) {
		t.Errorf("deny: %v", err)
	}
	b := New(Options{Mode: Touch, Timeout: 50 * time.Millisecond})
	if err := b.Request(ctx, ctap2.PresenceRequest{}); !errors.Is(err, ctap2.ErrPresenceTimeout) {
		t.Errorf("touch without an answer: %v, want a timeout", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := b.Request(cctx, ctap2.PresenceRequest{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	for _, approve := range []bool{true, false} {
		b := New(Options{Mode: Touch})
		done := make(chan error)
		go func() { done <- b.Request(ctx, ctap2.PresenceRequest{Command: "makeCredential"}) }()
		for {
			if req, ok := b.Pending(); ok {
				if req.Command != "makeCredential" {
					t.Errorf("pending %+v", req)
				}
				break
			}
			time.Sleep(time.Millisecond)
		}
		if approve {
			b.Approve()
		} else {
			b.Deny()
		}
		err := <-done
		if approve && err != nil || !approve && !errors.Is(err, ctap2.ErrPresenceDenied) {
			t.Errorf("approve=%v: %v", approve, err)
		}
		if _, ok := b.Pending(); ok || b.Approve() {
			t.Error("nothing should be pending after the answer")
		}
	}
}

func TestVerifier(t *testing.T) {
	v := NewVerifier()
	if err := v.VerifyUser(context.Background(), ctap2.PresenceRequest{}); err != nil {
		t.Error(err)
	}
	v.SetVerified(false)
	if err := v.VerifyUser(context.Background(), ctap2.PresenceRequest{}); !errors.Is(err, ctap2.ErrUVFailed) {
		t.Error(err)
	}
}

// fakeTerminal answers the prompt with its input and records the output.
type fakeTerminal struct {
	in  *strings.Reader
	out strings.Builder
}

func (f *fakeTerminal) Read(p []byte) (int, error)  { return f.in.Read(p) }
func (f *fakeTerminal) Write(p []byte) (int, error) { return f.out.Write(p) }

// TestPromptEscapesRequest: an RP ID or user name with control characters
// cannot rewrite the prompt line (issue 11, point 9).
func TestPromptEscapesRequest(t *testing.T) {
	term := &fakeTerminal{in: strings.NewReader("y\n")}
	b := New(Options{Mode: Prompt, Terminal: term})
	err := b.Request(context.Background(), ctap2.PresenceRequest{Command: "getAssertion",
		RPID: "evil.example\r\x1b[2KgetAssertion for accounts.google.com", UserName: "bob\u202e"})
	if err != nil {
		t.Fatal(err)
	}
	got := term.out.String()
	want := `vkey: touch requested: getAssertion for evil.example\x0d\x1b[2KgetAssertion for accounts.google.com (bob\u202e). Approve? [y/N] `
	if got != want {
		t.Errorf("prompt %q, want %q", got, want)
	}
}
