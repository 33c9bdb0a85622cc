package ctap2_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/keystore"
)

// TestRemainingDiscoverableAgrees: under every profile and without one,
// credential management's maxPossibleRemainingResidentCredentialsCount
// (CTAP 2.1 section 6.8.2) and getInfo's remainingDiscoverableCredentials
// (0x14, section 6.4; only where the profile's key reports it) are the
// same number: the profile's capacity, or the store's limit when that is
// smaller, minus what is stored; 0 when full. Stored credentials count
// whichever limit applies (a profile's key never reports its store's
// larger room, nor 255 for a key that holds 25).
func TestRemainingDiscoverableAgrees(t *testing.T) {
	profiles := []*ctap2.Profile{nil}
	for _, name := range ctap2.ProfileNames() {
		p, _ := ctap2.LookupProfile(name)
		profiles = append(profiles, &p)
	}
	for _, p := range profiles {
		name, capacity := "no profile", 0
		if p != nil {
			name, capacity = p.Name, p.Discoverable
		}
		// The store's default limit, and one below the profile's.
		limits := []int{0}
		if capacity > 3 {
			limits = append(limits, capacity-1)
		}
		for _, limit := range limits {
			t.Run(fmt.Sprintf("%s/store-limit-%d", name, limit), func(t *testing.T) {
				room := limit
				if room == 0 {
					room = keystore.DefaultMaxDiscoverable
				}
				if capacity > 0 {
					room = min(room, capacity)
				}
				k := newKey(t, func(o *ctap2.Options) { o.Profile = p; o.Store = keystore.NewMemory(limit) })
				ver, perms := pinFor(p, ctap2.PermMakeCredential)
				wantStatus(t, k.c.SetPIN(context.Background(), ver, "1234"), ctap2.StatusOK)
				store := func(i int) {
					t.Helper()
					ctx := context.Background()
					rpID := "example.com"
					if perms == 0 {
						rpID = "" // getPinToken has no rpId
					}
					tok, err := k.c.PINToken(ctx, ver, "1234", perms, rpID)
					if err != nil {
						t.Fatal(err)
					}
					req := mcRequest(t, "example.com", []byte{byte(i)}, true)
					req.PinUvAuthParam, req.PinUvAuthProtocol = tok.Param(req.ClientDataHash), tok.Version()
					if _, err := k.c.MakeCredential(ctx, req); err != nil {
						t.Fatalf("discoverable credential %d of %d: %v", i+1, room, err)
					}
				}
				store(0)
				store(1)
				wantRemaining(t, k, p, 2, room-2)
				if room > 16 {
					return // filling it is for the small ones
				}
				for i := 2; i < room; i++ {
					store(i)
				}
				wantRemaining(t, k, p, room, 0)
			})
		}
	}
}

// pinFor is the PIN protocol to use with the profile's key, and perms
// unless the key has only the CTAP 2.0 getPinToken (then 0, which makes
// client.PINToken use it).
func pinFor(p *ctap2.Profile, perms ctap2.Permission) (uint64, ctap2.Permission) {
	ver := uint64(2)
	if p != nil && p.PINProtocols != nil {
		ver = p.PINProtocols[0]
	}
	if p != nil && !slices.Contains(p.Options, "pinUvAuthToken") {
		perms = 0
	}
	return ver, perms
}

// wantRemaining checks getInfo's remainingDiscoverableCredentials and, on
// a key with credential management, getCredsMetadata; the key's PIN is
// 1234.
func wantRemaining(t *testing.T, k *testKey, p *ctap2.Profile, existing, remaining int) {
	t.Helper()
	ctx := context.Background()
	info, err := k.c.GetInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	reports := p == nil || p.RemainingInGetInfo
	switch got := info.RemainingDiscoverableCredentials; {
	case !reports && got != nil:
		t.Errorf("getInfo reports remainingDiscoverableCredentials %d; the profile's key does not", *got)
	case reports && got == nil:
		t.Errorf("getInfo has no remainingDiscoverableCredentials, want %d", remaining)
	case reports && *got != uint64(remaining):
		t.Errorf("getInfo remainingDiscoverableCredentials %d, want %d", *got, remaining)
	}
	if p != nil && !slices.Contains(p.Options, "credMgmt") && !slices.Contains(p.Options, "credentialMgmtPreview") {
		return // no credential management on this key (Titan v2)
	}
	ver, perms := pinFor(p, ctap2.PermCredentialMgmt)
	tok, err := k.c.PINToken(ctx, ver, "1234", perms, "")
	if err != nil {
		t.Fatal(err)
	}
	preview := p != nil && !slices.Contains(p.Options, "credMgmt")
	n, rem, err := k.c.CredentialManagement(tok, preview).Metadata(ctx)
	if err != nil {
		t.Fatalf("getCredsMetadata: %v", err)
	}
	if n != uint64(existing) || rem != uint64(remaining) {
		t.Errorf("getCredsMetadata: %d existing, %d remaining; want %d, %d", n, rem, existing, remaining)
	}
}
