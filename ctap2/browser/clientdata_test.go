package browser

import (
	"encoding/json"
	"testing"
)

// TestClientDataMatchesEncodingJSON: the hand-built clientDataJSON is what
// encoding/json writes for the same members, escapes included.
func TestClientDataMatchesEncodingJSON(t *testing.T) {
	for _, origin := range []string{"https://example.com", "https://bücher.example:8443", "http://localhost:3000"} {
		for _, top := range []string{"", "https://top.example", origin} {
			o, err := parseOrigin(origin)
			if err != nil {
				t.Fatal(err)
			}
			got, _, err := clientData("webauthn.get", []byte{0xfb, 0xff, 1, 2}, o, top)
			if err != nil {
				t.Fatal(err)
			}
			want := struct {
				Type        string `json:"type"`
				Challenge   Bytes  `json:"challenge"`
				Origin      string `json:"origin"`
				CrossOrigin bool   `json:"crossOrigin"`
				TopOrigin   string `json:"topOrigin,omitempty"`
			}{"webauthn.get", []byte{0xfb, 0xff, 1, 2}, o.serialized, top != "" && top != origin, ""}
			if want.CrossOrigin {
				want.TopOrigin = top
			}
			wantJSON, _ := json.Marshal(want)
			if string(got) != string(wantJSON) {
				t.Errorf("clientDataJSON\n%s\nwant\n%s", got, wantJSON)
			}
		}
	}
}
