package control_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/internal/control"
)

// TestEventsCarryExtensions: the extension names of CredentialCreated and
// CredentialAsserted reach GET /events as JSON string lists, absent when
// there are none.
func TestEventsCarryExtensions(t *testing.T) {
	hub := control.NewHub()
	events, stop := hub.Subscribe()
	defer stop()
	hub.Observe(context.Background(), ctap2.CredentialCreated{RPID: "example.com",
		Extensions: []string{"credProtect", "hmac-secret-mc"}, ExtensionOutputs: []string{"credProtect"}})
	hub.Observe(context.Background(), ctap2.CredentialAsserted{RPID: "example.com"})
	for _, want := range []string{`"extensions":["credProtect","hmac-secret-mc"],"extensionOutputs":["credProtect"]`, ""} {
		e := <-events
		e.Time = time.Time{}
		j, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if want != "" && !strings.Contains(string(j), want) {
			t.Errorf("%s: %s, want %s", e.Type, j, want)
		}
		if want == "" && strings.Contains(string(j), "extension") {
			t.Errorf("%s: %s names extensions, without any", e.Type, j)
		}
	}
}
