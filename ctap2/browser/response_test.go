package browser

import (
	"encoding/json"
	"reflect"
	"testing"
)

// TestAuthenticationResponseJSON: the hand-written JSON is what
// encoding/json writes for the struct's tags.
func TestAuthenticationResponseJSON(t *testing.T) {
	type plain AuthenticationResponse // without the MarshalJSON method
	for _, r := range []AuthenticationResponse{
		{ID: "aWQ", RawID: []byte("id"), Type: "public-key", AuthenticatorAttachment: "cross-platform",
			Response: AuthenticatorAssertionResponse{ClientDataJSON: []byte(`{"a":1}`), AuthenticatorData: make([]byte, 37), Signature: []byte{1, 2, 0xff}, UserHandle: []byte("u")}},
		{ID: "x\"\\<é", RawID: []byte{0xfb, 0xff}, Type: "public-key",
			Response:               AuthenticatorAssertionResponse{Signature: []byte{1}},
			ClientExtensionResults: ClientExtensionResults{GetCredBlob: &Bytes{}, PRF: &PRFOutputs{Results: &PRFValues{First: []byte{1}}}}},
	} {
		want, err := json.Marshal(plain(r))
		if err != nil {
			t.Fatal(err)
		}
		var got, exp any
		if err := json.Unmarshal(r.JSON(), &got); err != nil {
			t.Fatalf("JSON() is not JSON: %v\n%s", err, r.JSON())
		}
		_ = json.Unmarshal(want, &exp)
		if !reflect.DeepEqual(got, exp) {
			t.Errorf("JSON()\n%s\nencoding/json\n%s", r.JSON(), want)
		}
	}
}
