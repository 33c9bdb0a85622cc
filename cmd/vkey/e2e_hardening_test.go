package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vkey-dev/vkey/ctap2"
)

// TestE2ETouchLineAfterModeSwitch: a key started with automatic presence
// and switched to touch through the control API announces the next request
// ("touch requested"), with what comes from the request escaped
// (issue 11, points 15 and 9).
func TestE2ETouchLineAfterModeSwitch(t *testing.T) {
	k := startManagedKey(t, "switch", "--ephemeral", "--transport", "udp", "--udp-addr", "127.0.0.1:0", "--presence", "auto")
	if err := k.api().Do(context.Background(), http.MethodPut, "/presence/auto", map[string]bool{"on": false}, nil); err != nil {
		t.Fatal(err)
	}
	c, closeC := k.ctapClient(t)
	defer closeC()
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := c.MakeCredential(ctx, &ctap2.MakeCredentialRequest{
			ClientDataHash: make([]byte, 32), RP: &ctap2.RPEntity{ID: "evil.example\r\x1b[2Kaccounts.google.com"},
			User: &ctap2.UserEntity{ID: []byte("u"), Name: "u"}, PubKeyCredParams: esParam(-7)})
		done <- err
	}()
	waitPending(t, k)
	want := `vkey: touch requested (makeCredential for evil.example\x0d\x1b[2Kaccounts.google.com)`
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(k.out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no escaped touch line %q in:\n%q", want, k.out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if strings.Contains(k.out.String(), "\x1b") {
		t.Errorf("a terminal escape reached the output: %q", k.out.String())
	}
	k.ok(t, nil, "touch")
	if err := <-done; err != nil {
		t.Errorf("registration: %v", err)
	}
}
