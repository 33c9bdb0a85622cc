package control_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/internal/control"
	"github.com/vkey-dev/vkey/keystore"
	"github.com/vkey-dev/vkey/presence"
)

// get sends GET path on the fixture's socket and returns the answer.
func (f *fixture) get(t *testing.T, path string) (*http.Response, []byte) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", f.socket)
	}}}
	resp, err := hc.Get("http://vkey" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// TestCredentialsPaging: GET /credentials without parameters answers the
// whole list, as before paging; with limit or cursor it answers pages
// (default 100, at most 1000) with the next page's cursor in a header, the body staying a
// JSON array; the client follows the cursors and lists each of 1,000
// credentials exactly once, also for one relying party.
func TestCredentialsPaging(t *testing.T) {
	store := keystore.NewMemory(keystore.Unlimited)
	f := newFixture(t, presence.Auto, func(o *ctap2.Options) { o.Store = store })
	perRP := map[string]int{}
	for i := range 1000 {
		rp := fmt.Sprintf("rp%d.example", i%10)
		c := &keystore.Credential{
			ID: []byte(fmt.Sprintf("cred-%04d", i)), RPID: rp, UserID: []byte(fmt.Sprint(i)),
			Algorithm: keystore.AlgES256, Provider: keystore.SoftwareProviderName, KeyBlob: []byte("unused"),
			Discoverable: i%4 != 0, BackupEligible: i%4 == 0, Created: time.Unix(int64(i), 0),
		}
		if err := store.PutCredential(c); err != nil {
			t.Fatal(err)
		}
		perRP[rp]++
	}
	once := func(name string, cs []control.Credential, n int, rp string) {
		t.Helper()
		seen := map[string]bool{}
		for _, c := range cs {
			if seen[c.CredentialID] {
				t.Fatalf("%s: %s listed twice", name, c.CredentialID)
			}
			seen[c.CredentialID] = true
			if rp != "" && c.RPID != rp {
				t.Fatalf("%s: listed a credential of %s", name, c.RPID)
			}
		}
		if len(seen) != n {
			t.Fatalf("%s: %d credentials, want %d", name, len(seen), n)
		}
	}
	for _, limit := range []int{7, 0, 1000} {
		all, err := f.api.Credentials(ctx(t), "", limit)
		if err != nil {
			t.Fatal(err)
		}
		once(fmt.Sprintf("all, limit %d", limit), all, 1000, "")
		mine, err := f.api.Credentials(ctx(t), "rp3.example", limit)
		if err != nil {
			t.Fatal(err)
		}
		once(fmt.Sprintf("rp3, limit %d", limit), mine, perRP["rp3.example"], "rp3.example")
	}

	// Without parameters: every credential, a JSON array as before paging,
	// and no cursor.
	resp, body := f.get(t, "/credentials")
	var whole []control.Credential
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &whole) != nil || resp.Header.Get(control.NextCursorHeader) != "" {
		t.Fatalf("GET /credentials: %s, %d credentials, cursor %q", resp.Status, len(whole), resp.Header.Get(control.NextCursorHeader))
	}
	once("no parameters", whole, 1000, "")
	// With a cursor-less limit: the first page, and the cursor in
	// Vkey-Next-Cursor and a Link header.
	resp, body = f.get(t, fmt.Sprintf("/credentials?limit=%d", ctap2.DefaultVirtualPage))
	var first []control.Credential
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &first) != nil || len(first) != ctap2.DefaultVirtualPage {
		t.Fatalf("GET /credentials: %s, %d credentials (%.80s)", resp.Status, len(first), body)
	}
	next := resp.Header.Get(control.NextCursorHeader)
	if next == "" || !strings.Contains(resp.Header.Get("Link"), "cursor="+next) || !strings.Contains(resp.Header.Get("Link"), `rel="next"`) {
		t.Fatalf("first page: cursor %q, Link %q", next, resp.Header.Get("Link"))
	}
	resp, _ = f.get(t, "/credentials?limit=1000")
	if c := resp.Header.Get(control.NextCursorHeader); c != "" || resp.Header.Get("Link") != "" {
		t.Fatalf("the only page has a cursor %q", c)
	}

	// Bad parameters: 400 with a sentence, nothing else.
	_, rpNext, err := f.api.CredentialsPage(ctx(t), "rp3.example", "", 2)
	if err != nil || rpNext == "" {
		t.Fatalf("rp page: %q, %v", rpNext, err)
	}
	for _, q := range []string{"limit=0", "limit=1001", "limit=x", "cursor=!!!", "cursor=AAAA", "cursor=" + rpNext, "rpId=rp4.example&cursor=" + next} {
		resp, body := f.get(t, "/credentials?"+q)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "error") {
			t.Fatalf("GET /credentials?%s: %s %s", q, resp.Status, body)
		}
	}
	var apiErr *control.APIError
	if _, _, err := f.api.CredentialsPage(ctx(t), "", "bogus", 0); !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest {
		t.Fatalf("bogus cursor: %v", err)
	}
}
