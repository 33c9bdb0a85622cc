package browser

import (
	"encoding/json"
	"reflect"
	"testing"
)

// slowRequest is ParseRequestOptions by encoding/json alone.
func slowRequest(data []byte) (*RequestOptions, error) {
	var w wrappedRequestOptions
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, err
	}
	if w.PublicKey != nil {
		return w.PublicKey, nil
	}
	return &w.RequestOptions, nil
}

// FuzzParseRequestFast: whatever the fast reader accepts, encoding/json
// accepts too and reads the same.
func FuzzParseRequestFast(f *testing.F) {
	for _, s := range []string{
		`{"publicKey":{"challenge":"AAEC","rpId":"example.com","allowCredentials":[{"type":"public-key","id":"AQID","transports":["usb","nfc"]}],"userVerification":"discouraged","timeout":60000}}`,
		`{"challenge":"AAEC","timeout":0,"hints":[],"allowCredentials":[],"extensions":{"prf":{"eval":{"first":"AQ"}}},"mediation":"optional","x":[1,true,false,{"a":-1.5e3}]}`,
		`{"challenge":"AA==","RPID":"x"}`,
		`{"publicKey":null,"challenge":"AA"}`,
		`{"challenge":"AA","timeout":1e3}`,
		` { "challenge" : "_-8" , "rpId" : "é" } `,
		`{"challenge":"AA"} x`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fast, ok := parseRequestFast(data)
		if !ok {
			return
		}
		slow, err := slowRequest(data)
		if err != nil {
			t.Fatalf("the fast reader accepted what encoding/json refuses (%v): %s", err, data)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%s\nfast %+v\nslow %+v", data, fast, slow)
		}
	})
}
