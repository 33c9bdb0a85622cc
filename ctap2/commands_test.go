package ctap2_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vkey-dev/vkey/ctap2"
)

func TestGetInfo(t *testing.T) {
	k := newKey(t, func(o *ctap2.Options) { o.FirmwareVersion = 7 })
	info, err := k.c.GetInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"U2F_V2", "FIDO_2_0", "FIDO_2_1_PRE", "FIDO_2_1"}; strings.Join(info.Versions, " ") != strings.Join(want, " ") {
		t.Errorf("versions %v, want %v", info.Versions, want)
	}
	if !bytes.Equal(info.AAGUID, ctap2.DefaultAAGUID[:]) {
		t.Errorf("aaguid %x", info.AAGUID)
	}
	for opt, want := range map[string]bool{"rk": true, "up": true, "plat": false, "clientPin": false, "credMgmt": true, "credentialMgmtPreview": true} {
		if got, ok := info.Options[opt]; !ok || got != want {
			t.Errorf("option %s = %v (present %v), want %v", opt, got, ok, want)
		}
	}
	if info.MaxMsgSize != ctap2.DefaultMaxMsgSize || info.FirmwareVersion != 7 || len(info.Transports) != 1 || info.Transports[0] != "usb" {
		t.Errorf("info %+v", info)
	}
	if len(info.Algorithms) != 6 || info.Algorithms[0].Alg != -7 || info.Algorithms[1].Alg != -8 {
		t.Errorf("algorithms %+v", info.Algorithms)
	}
	if info.RemainingDiscoverableCredentials == nil || *info.RemainingDiscoverableCredentials == 0 {
		t.Error("remainingDiscoverableCredentials missing")
	}
	if err := k.c.SetPIN(context.Background(), 2, "1234"); err != nil {
		t.Fatal(err)
	}
	info, _ = k.c.GetInfo(context.Background())
	if !info.Options["clientPin"] {
		t.Error("clientPin should be true once a PIN is set")
	}
}

func TestUnknownCommand(t *testing.T) {
	k := newKey(t)
	for _, cmd := range []byte{0x03, 0x05, 0x09, 0x40, 0x42, 0xff} {
		if st, _ := k.raw(cmd, nil); st != ctap2.ErrInvalidCommand {
			t.Errorf("command %#x: %v, want CTAP1_ERR_INVALID_COMMAND", cmd, st)
		}
	}
	if out := k.a.HandleCBOR(context.Background(), nil); ctap2.Status(out[0]) != ctap2.ErrInvalidLength {
		t.Errorf("empty message: %v", ctap2.Status(out[0]))
	}
}

// TestMakeCredentialErrors covers the statuses CTAP 2.1 section 6.1.2 names.
func TestMakeCredentialErrors(t *testing.T) {
	good := func(t *testing.T) map[int]any {
		return map[int]any{
			1: make([]byte, 32),
			2: map[string]any{"id": "example.com"},
			3: map[string]any{"id": []byte{1, 2, 3}, "name": "alice"},
			4: []any{map[string]any{"type": "public-key", "alg": -7}},
		}
	}
	cases := []struct {
		name   string
		edit   func(m map[int]any)
		raw    []byte
		answer error
		want   ctap2.Status
	}{
		{name: "ok", edit: func(m map[int]any) {}, want: ctap2.StatusOK},
		{name: "unknown keys ignored", edit: func(m map[int]any) { m[99] = "x"; m[30] = []byte{1} } /* 11 is CTAP 2.2 attestationFormatsPreference */, want: ctap2.StatusOK},
		{name: "malformed CBOR", raw: []byte{0xa1, 0x01}, want: ctap2.ErrInvalidCBOR},
		{name: "trailing garbage", raw: []byte{0xa0, 0x00}, want: ctap2.ErrInvalidCBOR},
		{name: "duplicate key", raw: []byte{0xa2, 0x01, 0x40, 0x01, 0x40}, want: ctap2.ErrInvalidCBOR},
		{name: "indefinite length", raw: []byte{0xbf, 0xff}, want: ctap2.ErrInvalidCBOR},
		{name: "array not map", raw: []byte{0x80}, want: ctap2.ErrCBORUnexpectedType},
		{name: "no parameters", raw: []byte{}, want: ctap2.ErrMissingParameter},
		{name: "missing clientDataHash", edit: func(m map[int]any) { delete(m, 1) }, want: ctap2.ErrMissingParameter},
		{name: "missing rp", edit: func(m map[int]any) { delete(m, 2) }, want: ctap2.ErrMissingParameter},
		{name: "missing rp id", edit: func(m map[int]any) { m[2] = map[string]any{"name": "x"} }, want: ctap2.ErrMissingParameter},
		{name: "missing user", edit: func(m map[int]any) { delete(m, 3) }, want: ctap2.ErrMissingParameter},
		{name: "missing pubKeyCredParams", edit: func(m map[int]any) { delete(m, 4) }, want: ctap2.ErrMissingParameter},
		{name: "clientDataHash wrong type", edit: func(m map[int]any) { m[1] = "hash" }, want: ctap2.ErrCBORUnexpectedType},
		{name: "rp wrong type", edit: func(m map[int]any) { m[2] = 5 }, want: ctap2.ErrCBORUnexpectedType},
		{name: "options wrong type", edit: func(m map[int]any) { m[7] = map[string]any{"rk": 1} }, want: ctap2.ErrCBORUnexpectedType},
		{name: "param missing alg", edit: func(m map[int]any) { m[4] = []any{map[string]any{"type": "public-key"}} }, want: ctap2.ErrMissingParameter},
		{name: "param alg wrong type", edit: func(m map[int]any) { m[4] = []any{map[string]any{"type": "public-key", "alg": "ES256"}} }, want: ctap2.ErrCBORUnexpectedType},
		{name: "param not a map", edit: func(m map[int]any) { m[4] = []any{5} }, want: ctap2.ErrCBORUnexpectedType},
		{name: "malformed param after a usable one", edit: func(m map[int]any) {
			m[4] = []any{map[string]any{"type": "public-key", "alg": -7}, map[string]any{"alg": -8}}
		}, want: ctap2.ErrMissingParameter},
		{name: "unsupported algorithm", edit: func(m map[int]any) { m[4] = []any{map[string]any{"type": "public-key", "alg": -47}} }, want: ctap2.ErrUnsupportedAlgorithm}, // ES256K
		{name: "unknown type skipped", edit: func(m map[int]any) {
			m[4] = []any{map[string]any{"type": "x", "alg": -7}, map[string]any{"type": "public-key", "alg": -8}}
		}, want: ctap2.StatusOK},
		{name: "up=false", edit: func(m map[int]any) { m[7] = map[string]bool{"up": false} }, want: ctap2.ErrInvalidOption},
		{name: "uv=true without built-in UV", edit: func(m map[int]any) { m[7] = map[string]bool{"uv": true} }, want: ctap2.ErrInvalidOption},
		{name: "pinUvAuthParam without protocol", edit: func(m map[int]any) { m[8] = make([]byte, 16) }, want: ctap2.ErrMissingParameter},
		{name: "unsupported pin protocol", edit: func(m map[int]any) { m[8] = make([]byte, 16); m[9] = 3 }, want: ctap2.ErrInvalidParameter},
		{name: "token without PIN", edit: func(m map[int]any) { m[8] = make([]byte, 16); m[9] = 1 }, want: ctap2.ErrPINAuthInvalid},
		{name: "touch probe, no PIN", edit: func(m map[int]any) { m[8] = []byte{}; m[9] = 1 }, want: ctap2.ErrPINNotSet},
		{name: "largeBlobKey without rk", edit: func(m map[int]any) { m[6] = map[string]any{"largeBlobKey": true} }, want: ctap2.ErrInvalidOption},
		{name: "extension wrong type", edit: func(m map[int]any) { m[6] = map[string]any{"credProtect": "high"} }, want: ctap2.ErrCBORUnexpectedType},
		{name: "enterprise attestation not enabled", edit: func(m map[int]any) { m[10] = 1 }, want: ctap2.ErrInvalidParameter},
		{name: "presence denied", edit: func(m map[int]any) {}, answer: ctap2.ErrPresenceDenied, want: ctap2.ErrOperationDenied},
		{name: "presence timeout", edit: func(m map[int]any) {}, answer: ctap2.ErrPresenceTimeout, want: ctap2.ErrUserActionTimeout},
		{name: "client cancelled", edit: func(m map[int]any) {}, answer: context.Canceled, want: ctap2.ErrKeepaliveCancel},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k := newKey(t)
			k.up.answer = tc.answer
			params := tc.raw
			if params == nil {
				m := good(t)
				tc.edit(m)
				params = mustCBOR(t, m)
			}
			if st, _ := k.raw(ctap2.CmdMakeCredential, params); st != tc.want {
				t.Fatalf("got %v, want %v", st, tc.want)
			}
		})
	}
}

func TestGetAssertionErrors(t *testing.T) {
	k := newKey(t)
	ctx := context.Background()
	if _, err := k.c.MakeCredential(ctx, mcRequest(t, "example.com", []byte{1}, false)); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		m    map[int]any
		want ctap2.Status
	}{
		{"missing rpId", map[int]any{2: make([]byte, 32)}, ctap2.ErrMissingParameter},
		{"missing clientDataHash", map[int]any{1: "example.com"}, ctap2.ErrMissingParameter},
		{"rk option", map[int]any{1: "example.com", 2: make([]byte, 32), 5: map[string]bool{"rk": true}}, ctap2.ErrUnsupportedOption},
		{"uv option", map[int]any{1: "example.com", 2: make([]byte, 32), 5: map[string]bool{"uv": true}}, ctap2.ErrInvalidOption},
		{"no discoverable credentials", map[int]any{1: "example.com", 2: make([]byte, 32)}, ctap2.ErrNoCredentials},
		{"unknown credential", map[int]any{1: "example.com", 2: make([]byte, 32), 3: []any{map[string]any{"type": "public-key", "id": make([]byte, 64)}}}, ctap2.ErrNoCredentials},
		{"allowList wrong type", map[int]any{1: "example.com", 2: make([]byte, 32), 3: "x"}, ctap2.ErrCBORUnexpectedType},
	}
	for _, tc := range cases {
		if st, _ := k.raw(ctap2.CmdGetAssertion, mustCBOR(t, tc.m)); st != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, st, tc.want)
		}
	}
	if st, _ := k.raw(ctap2.CmdGetNextAssertion, nil); st != ctap2.ErrNotAllowed {
		t.Errorf("getNextAssertion without getAssertion: %v, want CTAP2_ERR_NOT_ALLOWED", st)
	}
}

// TestCredentialIDBinding: a tampered credential ID, or one presented for
// another relying party, is simply not found.
func TestCredentialIDBinding(t *testing.T) {
	k := newKey(t)
	ctx := context.Background()
	att, err := k.c.MakeCredential(ctx, mcRequest(t, "example.com", []byte{1}, false))
	if err != nil {
		t.Fatal(err)
	}
	id, _ := att.CredentialID()
	assert := func(rpID string, id []byte) error {
		_, err := k.c.GetAssertion(ctx, &ctap2.GetAssertionRequest{RPID: rpID, ClientDataHash: make([]byte, 32),
			AllowList: []ctap2.CredentialDescriptor{{Type: "public-key", ID: id}}})
		return err
	}
	wantStatus(t, assert("example.com", id), ctap2.StatusOK)
	wantStatus(t, assert("evil.example", id), ctap2.ErrNoCredentials)
	for i := range id {
		bad := bytes.Clone(id)
		bad[i] ^= 0x01
		if err := assert("example.com", bad); err == nil {
			t.Fatalf("credential ID with byte %d flipped was accepted", i)
		}
	}
	// Another authenticator (another wrap key) does not know it either.
	other := newKey(t)
	_, err = other.c.GetAssertion(ctx, &ctap2.GetAssertionRequest{RPID: "example.com", ClientDataHash: make([]byte, 32),
		AllowList: []ctap2.CredentialDescriptor{{Type: "public-key", ID: id}}})
	wantStatus(t, err, ctap2.ErrNoCredentials)
}

func TestExcludeList(t *testing.T) {
	k := newKey(t)
	ctx := context.Background()
	att, err := k.c.MakeCredential(ctx, mcRequest(t, "example.com", []byte{1}, true))
	if err != nil {
		t.Fatal(err)
	}
	id, _ := att.CredentialID()
	req := mcRequest(t, "example.com", []byte{2}, false)
	req.ExcludeList = []ctap2.CredentialDescriptor{{Type: "public-key", ID: []byte("not ours")}, {Type: "public-key", ID: id}}
	before := k.up.n.Load()
	_, err = k.c.MakeCredential(ctx, req)
	wantStatus(t, err, ctap2.ErrCredentialExcluded)
	if k.up.n.Load() != before+1 {
		t.Error("the excluded answer must come after user presence")
	}
	req.RP.ID = "other.example"
	if _, err := k.c.MakeCredential(ctx, req); err != nil {
		t.Errorf("excludeList of another RP must not exclude: %v", err)
	}
}

// TestDiscoverableSelection: newest first, numberOfCredentials, then
// getNextAssertion; user names only with UV.
func TestDiscoverableSelection(t *testing.T) {
	k := newKey(t)
	ctx := context.Background()
	for i := byte(1); i <= 3; i++ {
		req := mcRequest(t, "example.com", []byte{i}, true)
		req.User.Name = string('a' + rune(i))
		if _, err := k.c.MakeCredential(ctx, req); err != nil {
			t.Fatal(err)
		}
		k.clock.Advance(time.Second)
	}
	// Same user again replaces the old credential.
	if _, err := k.c.MakeCredential(ctx, mcRequest(t, "example.com", []byte{2}, true)); err != nil {
		t.Fatal(err)
	}
	first, err := k.c.GetAssertion(ctx, &ctap2.GetAssertionRequest{RPID: "example.com", ClientDataHash: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	if first.NumberOfCredentials != 3 {
		t.Fatalf("numberOfCredentials %d, want 3", first.NumberOfCredentials)
	}
	got := []byte{first.User.ID[0]}
	if first.User.Name != "" || first.User.DisplayName != "" {
		t.Error("user name returned without user verification")
	}
	for i := 0; i < 2; i++ {
		next, err := k.c.GetNextAssertion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if next.NumberOfCredentials != 0 {
			t.Error("numberOfCredentials only in the first response")
		}
		got = append(got, next.User.ID[0])
	}
	if !bytes.Equal(got, []byte{2, 3, 1}) {
		t.Errorf("order %v, want newest first [2 3 1]", got)
	}
	_, err = k.c.GetNextAssertion(ctx)
	wantStatus(t, err, ctap2.ErrNotAllowed)
	// The sequence times out after 30 seconds.
	if _, err := k.c.GetAssertion(ctx, &ctap2.GetAssertionRequest{RPID: "example.com", ClientDataHash: make([]byte, 32)}); err != nil {
		t.Fatal(err)
	}
	k.clock.Advance(31 * time.Second)
	_, err = k.c.GetNextAssertion(ctx)
	wantStatus(t, err, ctap2.ErrNotAllowed)
}

func TestUpFalseSkipsPresence(t *testing.T) {
	k := newKey(t)
	ctx := context.Background()
	att, _ := k.c.MakeCredential(ctx, mcRequest(t, "example.com", []byte{1}, false))
	id, _ := att.CredentialID()
	before := k.up.n.Load()
	resp, err := k.c.GetAssertion(ctx, &ctap2.GetAssertionRequest{RPID: "example.com", ClientDataHash: make([]byte, 32),
		AllowList: []ctap2.CredentialDescriptor{{Type: "public-key", ID: id}}, Options: map[string]bool{"up": false}})
	if err != nil {
		t.Fatal(err)
	}
	if k.up.n.Load() != before || resp.AuthData[32]&0x01 != 0 {
		t.Error("up=false must neither ask for presence nor set UP")
	}
}

func TestReset(t *testing.T) {
	ctx := context.Background()
	k := newKey(t)
	if _, err := k.c.MakeCredential(ctx, mcRequest(t, "example.com", []byte{1}, true)); err != nil {
		t.Fatal(err)
	}
	if err := k.c.SetPIN(ctx, 1, "1234"); err != nil {
		t.Fatal(err)
	}
	k.up.answer = ctap2.ErrPresenceDenied
	wantStatus(t, k.c.Reset(ctx), ctap2.ErrOperationDenied)
	k.up.answer = nil
	k.clock.Advance(11 * time.Second)
	wantStatus(t, k.c.Reset(ctx), ctap2.ErrNotAllowed)
	k.a.PowerCycle()
	wantStatus(t, k.c.Reset(ctx), ctap2.StatusOK)
	_, err := k.c.GetAssertion(ctx, &ctap2.GetAssertionRequest{RPID: "example.com", ClientDataHash: make([]byte, 32)})
	wantStatus(t, err, ctap2.ErrNoCredentials)
	info, _ := k.c.GetInfo(ctx)
	if info.Options["clientPin"] {
		t.Error("reset must remove the PIN")
	}
}

func TestSelection(t *testing.T) {
	k := newKey(t)
	wantStatus(t, k.c.Selection(context.Background()), ctap2.StatusOK)
	k.up.answer = ctap2.ErrPresenceDenied
	wantStatus(t, k.c.Selection(context.Background()), ctap2.ErrOperationDenied)
}

// TestCredProtect: CTAP 2.1 section 12.1 levels.
func TestCredProtect(t *testing.T) {
	ctx := context.Background()
	k := newKey(t)
	if err := k.c.SetPIN(ctx, 2, "1234"); err != nil {
		t.Fatal(err)
	}
	ids := map[uint64][]byte{}
	for level := uint64(1); level <= 3; level++ {
		tok, err := k.c.PINToken(ctx, 2, "1234", ctap2.PermMakeCredential, "example.com")
		if err != nil {
			t.Fatal(err)
		}
		req := mcRequest(t, "example.com", []byte{byte(level)}, true)
		req.Extensions = ctap2.MakeCredentialExtensions{CredProtect: uint8(level)}
		req.PinUvAuthParam, req.PinUvAuthProtocol = tok.Param(req.ClientDataHash), tok.Version()
		att, err := k.c.MakeCredential(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		ids[level], _ = att.CredentialID()
		if att.AuthData[32]&0x04 == 0 {
			t.Error("UV flag missing after pinUvAuthParam")
		}
	}
	// Without UV, discovery shows only level 1.
	resp, err := k.c.GetAssertion(ctx, &ctap2.GetAssertionRequest{RPID: "example.com", ClientDataHash: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	if resp.NumberOfCredentials > 1 || resp.User.ID[0] != 1 {
		t.Errorf("without UV discovery found %d credentials (first user %d), want only level 1", resp.NumberOfCredentials, resp.User.ID[0])
	}
	allow := func(id []byte) *ctap2.GetAssertionRequest {
		return &ctap2.GetAssertionRequest{RPID: "example.com", ClientDataHash: make([]byte, 32), AllowList: []ctap2.CredentialDescriptor{{Type: "public-key", ID: id}}}
	}
	if _, err := k.c.GetAssertion(ctx, allow(ids[2])); err != nil {
		t.Errorf("level 2 with an allowList must work without UV: %v", err)
	}
	_, err = k.c.GetAssertion(ctx, allow(ids[3]))
	wantStatus(t, err, ctap2.ErrNoCredentials)
	tok, err := k.c.PINToken(ctx, 2, "1234", ctap2.PermGetAssertion, "example.com")
	if err != nil {
		t.Fatal(err)
	}
	req := allow(ids[3])
	req.PinUvAuthParam, req.PinUvAuthProtocol = tok.Param(req.ClientDataHash), tok.Version()
	if _, err := k.c.GetAssertion(ctx, req); err != nil {
		t.Errorf("level 3 with UV: %v", err)
	}
}

func TestKeyStoreFull(t *testing.T) {
	ctx := context.Background()
	k := newKey(t, func(o *ctap2.Options) { o.Store = smallStore() })
	for i := byte(0); i < 2; i++ {
		if _, err := k.c.MakeCredential(ctx, mcRequest(t, "example.com", []byte{i}, true)); err != nil {
			t.Fatal(err)
		}
	}
	_, err := k.c.MakeCredential(ctx, mcRequest(t, "example.com", []byte{9}, true))
	wantStatus(t, err, ctap2.ErrKeyStoreFull)
	if !errors.Is(err, ctap2.ErrKeyStoreFull) {
		t.Error("errors.Is on a Status")
	}
}
