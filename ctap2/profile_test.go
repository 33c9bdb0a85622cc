package ctap2_test

import (
	"bytes"
	"context"
	"slices"
	"testing"

	"github.com/vkey-dev/vkey/ctap2"
)

// profileKey is a test key standing in for the named profile.
func profileKey(t *testing.T, name string) *testKey {
	t.Helper()
	p, ok := ctap2.LookupProfile(name)
	if !ok {
		t.Fatalf("no %s profile", name)
	}
	return newKey(t, func(o *ctap2.Options) { o.Profile = &p })
}

// wantCapacity stores n discoverable credentials, checks that getInfo has
// none left and that one more is CTAP2_ERR_KEY_STORE_FULL.
func wantCapacity(t *testing.T, k *testKey, n int) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		if _, err := k.c.MakeCredential(ctx, mcRequest(t, "example.com", []byte{byte(i)}, true)); err != nil {
			t.Fatalf("discoverable credential %d: %v", i+1, err)
		}
	}
	if info, _ := k.c.GetInfo(ctx); info.RemainingDiscoverableCredentials == nil || *info.RemainingDiscoverableCredentials != 0 {
		t.Errorf("remainingDiscoverableCredentials after %d: %v, want 0", n, info.RemainingDiscoverableCredentials)
	}
	_, err := k.c.MakeCredential(ctx, mcRequest(t, "example.com", []byte{250}, true))
	wantStatus(t, err, ctap2.ErrKeyStoreFull)
	// A full key still replaces a user's credential for the same RP: the
	// new one takes the old one's place (CTAP 2.1 section 6.1.2 step 17).
	if _, err := k.c.MakeCredential(ctx, mcRequest(t, "example.com", []byte{0}, true)); err != nil {
		t.Errorf("replacing a credential on a full key: %v", err)
	}
}

// TestProfileTitanV2 (issue 13, `vkey run --profile google-titan-v2`):
// getInfo is what the key's FIDO MDS statement declares (sources in
// profile.go): CTAP 2.0 and U2F, credProtect and hmac-secret, options rk
// and clientPin only, maxMsgSize 2200, PIN protocol 1 only, no
// algorithms, transports or list limits; credentials are ES256 only and PIN
// protocol 2 is CTAP1_ERR_INVALID_PARAMETER.
func TestProfileTitanV2(t *testing.T) {
	ctx := context.Background()
	k := profileKey(t, "google-titan-v2")
	info, algs, opts := shapeOf(t, k)
	if !slices.Equal(info.Versions, []string{"FIDO_2_0", "U2F_V2"}) || !slices.Equal(info.Extensions, []string{"credProtect", "hmac-secret"}) ||
		algs != nil || !slices.Equal(opts, []string{"clientPin", "rk"}) || info.Options["clientPin"] ||
		info.MaxMsgSize != 2200 || !slices.Equal(info.PinUvAuthProtocols, []uint64{1}) ||
		info.MaxCredentialCountInList != 0 || info.MaxCredentialIDLength != 0 || info.Transports != nil ||
		info.RemainingDiscoverableCredentials != nil || info.MaxSerializedLargeBlobArray != 0 || info.MaxCredBlobLength != 0 ||
		info.MaxRPIDsForSetMinPINLength != 0 || info.FirmwareVersion != 0 || info.AttestationFormats != nil ||
		!bytes.Equal(info.AAGUID, ctap2.DefaultAAGUID[:]) {
		t.Errorf("getInfo %+v does not have the profile's shape", info)
	}
	if _, err := k.c.MakeCredential(ctx, mcRequest(t, "example.com", []byte{1}, true)); err != nil {
		t.Fatal(err)
	}
	for _, alg := range []int64{-8, -35, -257} {
		_, err := k.c.MakeCredential(ctx, mcRequest(t, "example.com", []byte{2}, false, alg))
		wantStatus(t, err, ctap2.ErrUnsupportedAlgorithm)
	}
	wantStatus(t, k.c.SetPIN(ctx, 2, "1234"), ctap2.ErrInvalidParameter)
	wantStatus(t, k.c.SetPIN(ctx, 1, "1234"), ctap2.StatusOK)
	if info, _ := k.c.GetInfo(ctx); !info.Options["clientPin"] {
		t.Error("clientPin does not follow the PIN now set")
	}
}

// TestProfileExcelSecu (issue 13, `vkey run --profile excelsecu-fido2`):
// getInfo has the key's figures, among them remainingDiscoverableCredentials
// counting down from 50 and its smaller large-blob store and RP ID list;
// the 51st discoverable credential is CTAP2_ERR_KEY_STORE_FULL, a large-blob
// array past 2048 bytes is CTAP2_ERR_LARGE_BLOB_STORAGE_FULL and
// setMinPINLength with 7 RP IDs is CTAP2_ERR_PIN_POLICY_VIOLATION, while 6
// are stored (vkey's status for that limit).
func TestProfileExcelSecu(t *testing.T) {
	ctx := context.Background()
	k := profileKey(t, "excelsecu-fido2")
	info, algs, opts := shapeOf(t, k)
	wantOpts := []string{"alwaysUv", "authnrCfg", "clientPin", "credMgmt", "credentialMgmtPreview", "largeBlobs",
		"makeCredUvNotRqd", "pinUvAuthToken", "plat", "rk", "setMinPINLength", "up"}
	if !slices.Equal(info.Versions, []string{"U2F_V2", "FIDO_2_0", "FIDO_2_1", "FIDO_2_1_PRE"}) ||
		!slices.Equal(info.Extensions, []string{"credBlob", "credProtect", "hmac-secret", "largeBlobKey", "minPinLength"}) ||
		!slices.Equal(info.Transports, []string{"usb", "nfc", "ble"}) || !slices.Equal(algs, []int64{-7, -8}) ||
		!slices.Equal(opts, wantOpts) || !slices.Equal(info.PinUvAuthProtocols, []uint64{2, 1}) ||
		info.MaxMsgSize != 2048 || info.MaxCredentialCountInList != 8 || info.MaxCredentialIDLength != 96 ||
		info.MaxSerializedLargeBlobArray != 2048 || info.MinPINLength != 4 || info.MaxCredBlobLength != 32 ||
		info.MaxRPIDsForSetMinPINLength != 6 || info.FirmwareVersion != 256 ||
		info.RemainingDiscoverableCredentials == nil || *info.RemainingDiscoverableCredentials != 50 {
		t.Errorf("getInfo %+v does not have the profile's shape", info)
	}
	att, err := k.c.MakeCredential(ctx, mcRequest(t, "example.com", []byte{200}, false))
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := att.CredentialID(); len(id) > 96 {
		t.Errorf("a %d-byte credential ID, past the profile's maxCredentialIdLength 96", len(id))
	}

	// Large blobs (CTAP 2.1 section 6.10.2): no PIN yet, so no token.
	wantStatus(t, k.c.WriteLargeBlobArray(ctx, nil, make([]byte, 2049)), ctap2.ErrLargeBlobStorageFull)

	// setMinPINLength (CTAP 2.1 section 6.11.4), before a PIN is set.
	rpIDs := []string{"a.example", "b.example", "c.example", "d.example", "e.example", "f.example", "g.example"}
	wantStatus(t, k.c.SetMinPINLength(ctx, nil, 4, rpIDs, false), ctap2.ErrPINPolicyViolation)
	wantStatus(t, k.c.SetMinPINLength(ctx, nil, 4, rpIDs[:6], false), ctap2.StatusOK)

	wantCapacity(t, k, 50)
}

// TestProfileYubiKey57 (issue 13, `vkey run --profile yubikey5-fw5.7`):
// getInfo has the 5.7.1 key's figures, ES384 among its algorithms and
// remainingDiscoverableCredentials counting down from 100; an ES384
// credential ID fits its 128 bytes; the 101st discoverable credential is
// CTAP2_ERR_KEY_STORE_FULL and setMinPINLength with 2 RP IDs is
// CTAP2_ERR_PIN_POLICY_VIOLATION.
func TestProfileYubiKey57(t *testing.T) {
	ctx := context.Background()
	k := profileKey(t, "yubikey5-fw5.7")
	info, algs, opts := shapeOf(t, k)
	wantOpts := []string{"alwaysUv", "authnrCfg", "clientPin", "credMgmt", "credentialMgmtPreview", "largeBlobs",
		"pinUvAuthToken", "plat", "rk", "setMinPINLength", "up"}
	if !slices.Equal(info.Versions, []string{"U2F_V2", "FIDO_2_0", "FIDO_2_1_PRE", "FIDO_2_1"}) ||
		!slices.Equal(info.Extensions, []string{"credProtect", "hmac-secret", "largeBlobKey", "credBlob", "minPinLength"}) ||
		!slices.Equal(info.Transports, []string{"nfc", "usb"}) || !slices.Equal(algs, []int64{-7, -8, -35}) ||
		!slices.Equal(opts, wantOpts) || !slices.Equal(info.PinUvAuthProtocols, []uint64{2, 1}) ||
		info.MaxMsgSize != 1280 || info.MaxCredentialCountInList != 8 || info.MaxCredentialIDLength != 128 ||
		info.MaxSerializedLargeBlobArray != 4096 || info.MinPINLength != 4 || info.MaxCredBlobLength != 32 ||
		info.MaxRPIDsForSetMinPINLength != 1 || info.FirmwareVersion != 0x50701 || info.AttestationFormats != nil ||
		info.RemainingDiscoverableCredentials == nil || *info.RemainingDiscoverableCredentials != 100 {
		t.Errorf("getInfo %+v does not have the profile's shape", info)
	}
	att, err := k.c.MakeCredential(ctx, mcRequest(t, "example.com", []byte{200}, false, -35))
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := att.CredentialID(); len(id) > 128 {
		t.Errorf("a %d-byte ES384 credential ID, past the profile's maxCredentialIdLength 128", len(id))
	}
	_, err = k.c.MakeCredential(ctx, mcRequest(t, "example.com", []byte{201}, false, -36))
	wantStatus(t, err, ctap2.ErrUnsupportedAlgorithm)
	wantStatus(t, k.c.SetMinPINLength(ctx, nil, 4, []string{"a.example", "b.example"}, false), ctap2.ErrPINPolicyViolation)
	wantStatus(t, k.c.SetMinPINLength(ctx, nil, 4, []string{"a.example"}, false), ctap2.StatusOK)
	wantCapacity(t, k, 100)
}

// TestNoFIDO22 (issue 13): neither vkey's own getInfo nor any profile's
// lists FIDO_2_2, which CTAP 2.3 section 6.4 forbids (no CTAP version
// defines it; a CTAP 2.2 key reports FIDO_2_1), while the default still
// lists FIDO_2_1 and the CTAP 2.2 features on their own.
func TestNoFIDO22(t *testing.T) {
	info, _, _ := shapeOf(t, newKey(t))
	if slices.Contains(info.Versions, "FIDO_2_2") || !slices.Contains(info.Versions, "FIDO_2_1") ||
		!slices.Contains(info.Extensions, "hmac-secret-mc") || !info.Options["perCredMgmtRO"] || info.MaxPINLength != 63 {
		t.Errorf("default getInfo %+v", info)
	}
	for _, name := range ctap2.ProfileNames() {
		p, _ := ctap2.LookupProfile(name)
		info, _, _ := shapeOf(t, newKey(t, func(o *ctap2.Options) { o.Profile = &p }))
		if slices.Contains(info.Versions, "FIDO_2_2") {
			t.Errorf("profile %s lists FIDO_2_2", name)
		}
		if p.Source == "" {
			t.Errorf("profile %s names no source", name)
		}
	}
}

// TestProfileCommands (issue 13): a profile's key answers a command its
// getInfo does not announce with CTAP1_ERR_INVALID_COMMAND, as a key that
// lacks it does (CTAP 2.1 section 6.4): credential management (and its
// preview) without credMgmt/credentialMgmtPreview, largeBlobs without
// largeBlobs, config without authnrCfg, selection without FIDO_2_1.
// Without a profile, vkey has them all.
func TestProfileCommands(t *testing.T) {
	cmds := []byte{ctap2.CmdCredentialManagement, ctap2.CmdCredentialMgmtPreview, ctap2.CmdSelection, ctap2.CmdLargeBlobs, ctap2.CmdConfig}
	for _, tc := range []struct {
		profile string
		has     []byte
	}{
		{"", cmds},
		{"google-titan-v2", nil},
		{"feitian-epass-fido", []byte{ctap2.CmdCredentialMgmtPreview}},
		{"yubikey5-fw5.4", []byte{ctap2.CmdCredentialMgmtPreview}},
		{"nitrokey3", []byte{ctap2.CmdCredentialManagement, ctap2.CmdCredentialMgmtPreview, ctap2.CmdSelection}},
		{"excelsecu-fido2", cmds},
		{"yubikey5-fw5.7", cmds},
	} {
		k := newKey(t)
		if tc.profile != "" {
			k = profileKey(t, tc.profile)
		}
		for _, cmd := range cmds {
			st, _ := k.raw(cmd, nil)
			if has := slices.Contains(tc.has, cmd); has == (st == ctap2.ErrInvalidCommand) {
				t.Errorf("profile %q, command 0x%02x: %v (has it: %v)", tc.profile, cmd, st, has)
			}
		}
	}
}

// TestProfilePINTokens (issue 13): a profile without the pinUvAuthToken
// option has only the CTAP 2.0 getPinToken; the permission-scoped
// getPinUvAuthTokenUsingPinWithPermissions is
// CTAP2_ERR_INVALID_SUBCOMMAND (CTAP 2.1 section 6.4). A profile with it,
// and vkey without one, issue both.
func TestProfilePINTokens(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		profile string
		scoped  bool
	}{
		{"", true}, {"google-titan-v2", false}, {"feitian-epass-fido", false}, {"yubikey5-fw5.4", false},
		{"nitrokey3", true}, {"excelsecu-fido2", true}, {"yubikey5-fw5.7", true},
	} {
		k := newKey(t)
		if tc.profile != "" {
			k = profileKey(t, tc.profile)
		}
		wantStatus(t, k.c.SetPIN(ctx, 1, "1234"), ctap2.StatusOK)
		if _, err := k.c.PINToken(ctx, 1, "1234", 0, ""); err != nil {
			t.Errorf("profile %q: getPinToken: %v", tc.profile, err)
		}
		_, err := k.c.PINToken(ctx, 1, "1234", ctap2.PermMakeCredential, "example.com")
		if tc.scoped {
			wantStatus(t, err, ctap2.StatusOK)
		} else {
			wantStatus(t, err, ctap2.ErrInvalidSubcommand)
		}
	}
}
