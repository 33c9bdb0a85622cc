package ctap2_test

import (
	"context"
	"maps"
	"slices"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/vkey-dev/vkey/ctap2"
)

// TestAdvertisedExtensions: vkey's own getInfo lists every extension its
// typed inputs carry (each field of MakeCredentialExtensions and
// GetAssertionExtensions), so a key without a profile ignores none of the
// extensions it implements.
func TestAdvertisedExtensions(t *testing.T) {
	info, _, _ := shapeOf(t, newKey(t))
	hs := &ctap2.HMACSecretInput{}
	for _, v := range []any{
		ctap2.MakeCredentialExtensions{CredProtect: 1, HMACSecret: true, HMACSecretMC: hs, CredBlob: []byte{}, LargeBlobKey: true,
			MinPINLength: true, ThirdPartyPayment: true},
		ctap2.GetAssertionExtensions{HMACSecret: hs, CredBlob: true, LargeBlobKey: true, ThirdPartyPayment: true},
	} {
		var m map[string]cbor.RawMessage
		if err := cbor.Unmarshal(mustCBOR(t, v), &m); err != nil {
			t.Fatal(err)
		}
		for name := range m {
			if !slices.Contains(info.Extensions, name) {
				t.Errorf("getInfo's extensions %v lack %s, which vkey implements", info.Extensions, name)
			}
		}
	}
}

// authDataExtensions decodes the extension outputs of a getAssertion's
// authData (no attested credential data before them).
func authDataExtensions(t *testing.T, ad []byte) map[string]cbor.RawMessage {
	t.Helper()
	if ad[32]&0x80 == 0 {
		return nil
	}
	var out map[string]cbor.RawMessage
	if err := cbor.Unmarshal(ad[37:], &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestProfileIgnoresExtensions (issue 13): a profile's key processes only
// the extensions its getInfo lists. One it does not list is ignored, as a
// key that does not implement it ignores it (CTAP 2.1 section 12): no
// output in authData, no largeBlobKey in the response, no stored flag, and
// no status for a malformed value, which such a key never parses. Those it
// lists still work. Without a profile (""), vkey lists and processes them
// all, and a malformed value is its status.
func TestProfileIgnoresExtensions(t *testing.T) {
	ctx := context.Background()
	salt := make([]byte, 32)
	// withOutput are the makeCredential extensions with an authData output
	// for these inputs (minPinLength has one only for a configured RP).
	withOutput := []string{"credProtect", "hmac-secret", "hmac-secret-mc", "credBlob"}
	type ext = map[string]any
	malformedMC := map[string]ext{
		"credBlob":          {"credBlob": true},
		"largeBlobKey":      {"largeBlobKey": false},
		"minPinLength":      {"minPinLength": "x"},
		"thirdPartyPayment": {"thirdPartyPayment": 1},
		"hmac-secret-mc":    {"hmac-secret": true, "hmac-secret-mc": 5},
	}
	malformedGA := map[string]ext{
		"credBlob":          {"credBlob": 1},
		"largeBlobKey":      {"largeBlobKey": false},
		"thirdPartyPayment": {"thirdPartyPayment": "x"},
	}
	for _, name := range append([]string{""}, ctap2.ProfileNames()...) {
		t.Run(name, func(t *testing.T) {
			k := newKey(t)
			if name != "" {
				k = profileKey(t, name)
			}
			info, _, _ := shapeOf(t, k)
			listed := func(e string) bool { return slices.Contains(info.Extensions, e) }
			proto := info.PinUvAuthProtocols[0]
			hs, err := k.c.NewHMACSecret(ctx, proto, salt)
			if err != nil {
				t.Fatal(err)
			}
			req := mcRequest(t, "example.com", []byte{1}, true)
			req.Extensions = ctap2.MakeCredentialExtensions{CredProtect: 1, HMACSecret: true, HMACSecretMC: hs.Input,
				CredBlob: []byte("blob"), LargeBlobKey: true, MinPINLength: true, ThirdPartyPayment: true}
			att, err := k.c.MakeCredential(ctx, req)
			if err != nil {
				t.Fatalf("makeCredential with every extension: %v", err)
			}
			out := mcExtensions(t, att)
			for e := range out {
				if !listed(e) {
					t.Errorf("makeCredential gave an output for %s, which getInfo %v does not list", e, info.Extensions)
				}
			}
			for _, e := range withOutput {
				if _, ok := out[e]; listed(e) && !ok {
					t.Errorf("makeCredential gave no %s output (outputs %v)", e, slices.Sorted(maps.Keys(out)))
				}
			}
			if (att.LargeBlobKey != nil) != listed("largeBlobKey") {
				t.Errorf("makeCredential's largeBlobKey %x, largeBlobKey listed: %v", att.LargeBlobKey, listed("largeBlobKey"))
			}

			id, _ := att.CredentialID()
			if hs, err = k.c.NewHMACSecret(ctx, proto, salt); err != nil {
				t.Fatal(err)
			}
			resp, err := k.c.GetAssertion(ctx, &ctap2.GetAssertionRequest{RPID: "example.com", ClientDataHash: make([]byte, 32),
				AllowList:  []ctap2.CredentialDescriptor{{Type: "public-key", ID: id}},
				Extensions: ctap2.GetAssertionExtensions{HMACSecret: hs.Input, CredBlob: true, LargeBlobKey: true, ThirdPartyPayment: true}})
			if err != nil {
				t.Fatalf("getAssertion with every extension: %v", err)
			}
			out = authDataExtensions(t, resp.AuthData)
			for _, e := range []string{"hmac-secret", "credBlob", "thirdPartyPayment"} {
				if _, ok := out[e]; ok != listed(e) {
					t.Errorf("getAssertion output for %s: %v, listed: %v", e, ok, listed(e))
				}
			}
			if (resp.LargeBlobKey != nil) != listed("largeBlobKey") {
				t.Errorf("getAssertion's largeBlobKey %x, largeBlobKey listed: %v", resp.LargeBlobKey, listed("largeBlobKey"))
			}
			var payment bool
			if raw, ok := out["thirdPartyPayment"]; ok {
				if err := cbor.Unmarshal(raw, &payment); err != nil || !payment {
					t.Errorf("thirdPartyPayment output %x (%v), want true", raw, err)
				}
			}

			// Malformed values: the status of each for an extension the
			// key lists, none for one it does not.
			for e, in := range malformedMC {
				r := mcRequest(t, "example.com", []byte{2}, true)
				r.Extensions = ctap2.MakeCredentialExtensions{Other: map[string][]byte{}}
				for n, v := range in {
					r.Extensions.Other[n] = mustCBOR(t, v)
				}
				_, err := k.c.MakeCredential(ctx, r)
				if (err == nil) == listed(e) {
					t.Errorf("makeCredential with a malformed %s: %v, listed: %v", e, err, listed(e))
				}
			}
			for e, in := range malformedGA {
				r := &ctap2.GetAssertionRequest{RPID: "example.com", ClientDataHash: make([]byte, 32),
					AllowList: []ctap2.CredentialDescriptor{{Type: "public-key", ID: id}}, Extensions: ctap2.GetAssertionExtensions{Other: map[string][]byte{}}}
				for n, v := range in {
					r.Extensions.Other[n] = mustCBOR(t, v)
				}
				_, err := k.c.GetAssertion(ctx, r)
				if (err == nil) == listed(e) {
					t.Errorf("getAssertion with a malformed %s: %v, listed: %v", e, err, listed(e))
				}
			}
		})
	}
}

// TestLookupProfileIsACopy: the profiles are no global state. Changing
// what LookupProfile returned, its slices included, changes neither the
// next lookup nor a key made with it (New keeps its own copy), and
// changing what Info returned does not change the key's next getInfo;
// ProfileNames is sorted and each name is found.
func TestLookupProfileIsACopy(t *testing.T) {
	names := ctap2.ProfileNames()
	if len(names) == 0 || !slices.IsSorted(names) {
		t.Fatalf("ProfileNames %v: empty or not sorted", names)
	}
	names[0] = "changed"
	if ctap2.ProfileNames()[0] == "changed" {
		t.Error("changing ProfileNames' slice changed the next call's")
	}
	if _, ok := ctap2.LookupProfile("no-such-key"); ok {
		t.Error("LookupProfile found a profile that does not exist")
	}
	for _, name := range ctap2.ProfileNames() {
		p, ok := ctap2.LookupProfile(name)
		if !ok || p.Name != name {
			t.Fatalf("LookupProfile(%q): %v, %v", name, p.Name, ok)
		}
		want, _ := ctap2.LookupProfile(name)
		k := newKey(t, func(o *ctap2.Options) { o.Profile = &p })
		before, _, _ := shapeOf(t, k)

		p.Name, p.MaxMsgSize, p.Discoverable = "changed", 1, 1
		for _, s := range [][]string{p.Versions, p.Extensions, p.Transports, p.Options} {
			for i := range s {
				s[i] = "changed"
			}
		}
		for i := range p.Algorithms {
			p.Algorithms[i] = -1
		}
		for i := range p.PINProtocols {
			p.PINProtocols[i] = 9
		}
		again, _ := ctap2.LookupProfile(name)
		if !slices.Equal(again.Versions, want.Versions) || !slices.Equal(again.Extensions, want.Extensions) ||
			!slices.Equal(again.Transports, want.Transports) || !slices.Equal(again.Options, want.Options) ||
			!slices.Equal(again.Algorithms, want.Algorithms) || !slices.Equal(again.PINProtocols, want.PINProtocols) ||
			again.Name != name || again.MaxMsgSize != want.MaxMsgSize || again.Discoverable != want.Discoverable {
			t.Errorf("%s: changing a looked-up profile changed the next lookup: %+v", name, again)
		}
		// Nor does changing what Info returned.
		if info, err := k.a.Info(); err == nil {
			info.Versions[0], info.Extensions[0], info.PinUvAuthProtocols[0] = "changed", "changed", 9
		}
		after, _, _ := shapeOf(t, k)
		if !slices.Equal(after.Versions, before.Versions) || !slices.Equal(after.Extensions, before.Extensions) ||
			!slices.Equal(after.Transports, before.Transports) || !slices.Equal(after.PinUvAuthProtocols, before.PinUvAuthProtocols) ||
			len(after.Options) != len(before.Options) {
			t.Errorf("%s: changing the profile given to New changed the key's getInfo: %+v", name, after)
		}
	}
}
