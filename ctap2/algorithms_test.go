package ctap2_test

import (
	"bytes"
	"context"
	"slices"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/ctap2/client"
	"github.com/vkey-dev/vkey/keystore"
)

// TestAlgorithmsOption (issue 13, `vkey run --algorithms`): getInfo lists
// the configured algorithms in their order, makeCredential picks the
// client's first listed one the key offers, and one the key does not
// offer is CTAP2_ERR_UNSUPPORTED_ALGORITHM (CTAP 2.1 section 6.1.2 step 3).
func TestAlgorithmsOption(t *testing.T) {
	ctx := context.Background()
	k := newKey(t)
	info, err := k.c.GetInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, p := range info.Algorithms {
		got = append(got, p.Alg)
	}
	if want := []int64{-7, -8, -35, -36, -257, -37}; !slices.Equal(got, want) {
		t.Errorf("default algorithms %v, want %v", got, want)
	}

	k = newKey(t, func(o *ctap2.Options) { o.Algorithms = []keystore.Algorithm{keystore.AlgRS256, keystore.AlgES384} })
	info, err = k.c.GetInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Algorithms) != 2 || info.Algorithms[0].Alg != -257 || info.Algorithms[1].Alg != -35 {
		t.Errorf("algorithms %+v, want RS256 then ES384", info.Algorithms)
	}
	_, err = k.c.MakeCredential(ctx, mcRequest(t, "example.com", []byte{1}, false, -7, -8))
	wantStatus(t, err, ctap2.ErrUnsupportedAlgorithm)
	att, err := k.c.MakeCredential(ctx, mcRequest(t, "example.com", []byte{1}, false, -7, -35, -257))
	if err != nil {
		t.Fatal(err)
	}
	if alg := coseAlg(t, att); alg != -35 {
		t.Errorf("credential of alg %d, want ES384 (the client's first the key offers)", alg)
	}

	for _, bad := range [][]keystore.Algorithm{{-7, -7}, {-65535}} {
		if _, err := ctap2.New(ctap2.Options{Store: keystore.NewMemory(0), Algorithms: bad}); err == nil {
			t.Errorf("algorithms %v accepted", bad)
		}
	}
}

// coseAlg is the alg (3) of the credential public key in att's authData.
func coseAlg(t *testing.T, att *client.Attestation) int64 {
	t.Helper()
	id, err := att.CredentialID()
	if err != nil {
		t.Fatal(err)
	}
	var key map[int]any
	if err := cbor.NewDecoder(bytes.NewReader(att.AuthData[37+16+2+len(id):])).Decode(&key); err != nil {
		t.Fatal(err)
	}
	alg, _ := key[3].(int64)
	return alg
}
