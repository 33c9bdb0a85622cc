package ctap2_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/ctap2/client"
	"github.com/vkey-dev/vkey/internal/webauthntest"
)

// The tests of this file replay what platforms send once a PIN is set
// (issue 16): CTAP 2.1 token, list and limit semantics, under both PIN/UV
// auth protocols.

const flowPIN = "1234"

// pinKey is a key with a PIN set.
func pinKey(t *testing.T, mutate ...func(*ctap2.Options)) *testKey {
	t.Helper()
	k := newKey(t, mutate...)
	wantStatus(t, k.c.SetPIN(context.Background(), 2, flowPIN), ctap2.StatusOK)
	return k
}

// withToken fills in pinUvAuthParam over the clientDataHash.
func withToken(tok *client.Token, cdh []byte) ([]byte, *uint64) { return tok.Param(cdh), tok.Version() }

func gaRequest(rpID string, up bool, tok *client.Token, ids ...[]byte) *ctap2.GetAssertionRequest {
	req := &ctap2.GetAssertionRequest{RPID: rpID, ClientDataHash: bytes.Repeat([]byte{7}, 32), Options: map[string]bool{"up": up}}
	for _, id := range ids {
		req.AllowList = append(req.AllowList, ctap2.CredentialDescriptor{Type: "public-key", ID: id})
	}
	if tok != nil {
		req.PinUvAuthParam, req.PinUvAuthProtocol = withToken(tok, req.ClientDataHash)
	}
	return req
}

// registerN makes n credentials for rpID with a fresh mc token each and
// returns their IDs.
func registerN(t *testing.T, k *testKey, proto uint64, rpID string, rk bool, n int) [][]byte {
	t.Helper()
	var ids [][]byte
	for i := range n {
		tok, err := k.c.PINToken(context.Background(), proto, flowPIN, ctap2.PermMakeCredential, rpID)
		if err != nil {
			t.Fatal(err)
		}
		req := mcRequest(t, rpID, []byte{byte(i + 1)}, rk)
		req.User.Name, req.User.DisplayName = fmt.Sprintf("user%d", i), fmt.Sprintf("User %d", i)
		req.PinUvAuthParam, req.PinUvAuthProtocol = withToken(tok, req.ClientDataHash)
		att, err := k.c.MakeCredential(context.Background(), req)
		if err != nil {
			t.Fatalf("makeCredential %d: %v", i, err)
		}
		id, _ := att.CredentialID()
		ids = append(ids, id)
	}
	return ids
}

// TestSilentPreflightKeepsToken (issue 16 point 1): Firefox's sign-in and
// Chromium's exclude-list probe send a silent up=false getAssertion with
// the token, then the real request with the same token. Only the step that
// runs with up=true uses the token's mc/ga permissions up (CTAP 2.1
// sections 6.1.2 step 14 and 6.2.2 step 9).
func TestSilentPreflightKeepsToken(t *testing.T) {
	ctx := context.Background()
	for _, proto := range []uint64{1, 2} {
		t.Run(fmt.Sprintf("protocol%d/getAssertion", proto), func(t *testing.T) {
			k := pinKey(t)
			ids := registerN(t, k, proto, "example.com", false, 3)
			foreign := bytes.Repeat([]byte{9}, 64)
			tok, err := k.c.PINToken(ctx, proto, flowPIN, ctap2.PermGetAssertion, "example.com")
			if err != nil {
				t.Fatal(err)
			}
			list := [][]byte{foreign, ids[0], ids[1], ids[2]}
			silent, err := k.c.GetAssertion(ctx, gaRequest("example.com", false, tok, list...))
			if err != nil || silent.AuthData[32]&0x01 != 0 {
				t.Fatalf("silent assertion: %v", err)
			}
			presences := k.up.n.Load()
			real, err := k.c.GetAssertion(ctx, gaRequest("example.com", true, tok, silent.Credential.ID))
			if err != nil {
				t.Fatalf("the real assertion with the same token: %v", err)
			}
			if real.AuthData[32]&0x05 != 0x05 || k.up.n.Load() != presences+1 {
				t.Errorf("real assertion flags %x: want UP and UV after one touch", real.AuthData[32])
			}
			// The up=true request used the ga permission up.
			_, err = k.c.GetAssertion(ctx, gaRequest("example.com", true, tok, ids[0]))
			wantStatus(t, err, ctap2.ErrPINAuthInvalid)
		})
		t.Run(fmt.Sprintf("protocol%d/excludeList", proto), func(t *testing.T) {
			k := pinKey(t)
			ids := registerN(t, k, proto, "example.com", false, 2)
			other := registerN(t, k, proto, "other.example", false, 1)
			for _, tc := range []struct {
				name    string
				exclude [][]byte
				want    ctap2.Status
			}{
				{"not excluded", [][]byte{other[0], bytes.Repeat([]byte{3}, 80)}, ctap2.StatusOK},
				{"excluded", [][]byte{other[0], ids[1]}, ctap2.ErrCredentialExcluded},
			} {
				// Chromium asks for mc and ga when the exclude list is not empty.
				tok, err := k.c.PINToken(ctx, proto, flowPIN, ctap2.PermMakeCredential|ctap2.PermGetAssertion, "example.com")
				if err != nil {
					t.Fatal(err)
				}
				_, err = k.c.GetAssertion(ctx, gaRequest("example.com", false, tok, tc.exclude...))
				if tc.want == ctap2.StatusOK {
					wantStatus(t, err, ctap2.ErrNoCredentials)
				} else if err != nil {
					t.Fatalf("%s: silent probe: %v", tc.name, err)
				}
				req := mcRequest(t, "example.com", []byte{42}, true)
				for _, id := range tc.exclude {
					req.ExcludeList = append(req.ExcludeList, ctap2.CredentialDescriptor{Type: "public-key", ID: id})
				}
				req.PinUvAuthParam, req.PinUvAuthProtocol = withToken(tok, req.ClientDataHash)
				_, err = k.c.MakeCredential(ctx, req)
				wantStatus(t, err, tc.want)
			}
		})
	}
}

// TestTokenRefusals (issue 16 point 2): a token without the permission a
// command needs, bound to another RP ID, or whose permissions are used up
// is CTAP2_ERR_PIN_AUTH_INVALID in every command that takes one.
func TestTokenRefusals(t *testing.T) {
	ctx := context.Background()
	for _, proto := range []uint64{1, 2} {
		k := pinKey(t)
		ids := registerN(t, k, proto, "example.com", true, 1)
		token := func(perm ctap2.Permission, rpID string) *client.Token {
			tok, err := k.c.PINToken(ctx, proto, flowPIN, perm, rpID)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
		mc := func(tok *client.Token) error {
			req := mcRequest(t, "example.com", []byte{77}, false)
			req.PinUvAuthParam, req.PinUvAuthProtocol = withToken(tok, req.ClientDataHash)
			_, err := k.c.MakeCredential(ctx, req)
			return err
		}
		ga := func(tok *client.Token) error {
			_, err := k.c.GetAssertion(ctx, gaRequest("example.com", true, tok, ids[0]))
			return err
		}
		cm := func(tok *client.Token) error {
			_, err := k.c.CredentialManagement(tok, false).Credentials(ctx, client.RPByID("example.com"))
			return err
		}
		lbw := func(tok *client.Token) error {
			arr, err := k.c.LargeBlobArray(ctx)
			if err != nil {
				return err
			}
			return k.c.WriteLargeBlobArray(ctx, tok, arr)
		}
		acfg := func(tok *client.Token) error { return k.c.SetMinPINLength(ctx, tok, 4, nil, false) }
		used := func(perm ctap2.Permission, rpID string) *client.Token {
			tok := token(perm|ctap2.PermMakeCredential, rpID)
			if err := mc(tok); err != nil {
				t.Fatalf("using the token: %v", err)
			}
			return tok
		}
		for _, tc := range []struct {
			name string
			tok  *client.Token
			run  func(*client.Token) error
		}{
			{"mc without mc", token(ctap2.PermGetAssertion, ""), mc},
			{"mc bound to another RP", token(ctap2.PermMakeCredential, "other.example"), mc},
			{"mc used up", used(0, "example.com"), mc},
			{"ga without ga", token(ctap2.PermMakeCredential, ""), ga},
			{"ga bound to another RP", token(ctap2.PermGetAssertion, "other.example"), ga},
			{"ga used up", used(ctap2.PermGetAssertion, "example.com"), ga},
			{"cm without cm", token(ctap2.PermMakeCredential|ctap2.PermGetAssertion, ""), cm},
			{"cm bound to another RP", token(ctap2.PermCredentialMgmt, "other.example"), cm},
			{"cm used up", used(ctap2.PermCredentialMgmt, "example.com"), cm},
			{"lbw without lbw", token(ctap2.PermCredentialMgmt, ""), lbw},
			{"acfg without acfg", token(ctap2.PermLargeBlobWrite, ""), acfg},
		} {
			t.Run(fmt.Sprintf("protocol%d/%s", proto, tc.name), func(t *testing.T) {
				wantStatus(t, tc.run(tc.tok), ctap2.ErrPINAuthInvalid)
			})
		}
		// A used-up token keeps lbw (CTAP 2.1 section 6.1.2 step 14).
		if err := lbw(used(ctap2.PermLargeBlobWrite, "example.com")); err != nil {
			t.Errorf("protocol %d: lbw after makeCredential: %v", proto, err)
		}
		// 0x40 is for asking a permission the key cannot grant.
		_, err := k.c.PINToken(ctx, proto, flowPIN, ctap2.PermBioEnrollment, "")
		wantStatus(t, err, ctap2.ErrUnauthorizedPermission)
	}
}

// TestGetPinTokenForcedChange (issue 16 point 3): while a PIN change is
// forced, getPinToken is CTAP2_ERR_PIN_INVALID (CTAP 2.1 section 6.5.5.7.1)
// and getPinUvAuthTokenUsingPinWithPermissions
// CTAP2_ERR_PIN_POLICY_VIOLATION (section 6.5.5.7.2).
func TestGetPinTokenForcedChange(t *testing.T) {
	ctx := context.Background()
	for _, proto := range []uint64{1, 2} {
		k := pinKey(t)
		tok, _ := k.c.PINToken(ctx, proto, flowPIN, ctap2.PermAuthenticatorCfg, "")
		wantStatus(t, k.c.SetMinPINLength(ctx, tok, 0, nil, true), ctap2.StatusOK)
		_, err := k.c.PINToken(ctx, proto, flowPIN, 0, "")
		wantStatus(t, err, ctap2.ErrPINInvalid)
		_, err = k.c.PINToken(ctx, proto, flowPIN, ctap2.PermGetAssertion, "")
		wantStatus(t, err, ctap2.ErrPINPolicyViolation)
		if n, _ := k.c.PINRetries(ctx); n != 8 {
			t.Errorf("protocol %d: %d retries after the right PIN, want 8", proto, n)
		}
	}
}

// rawCall sends params (any CBOR value) and returns the status and the
// decoded response map.
func rawCall(t *testing.T, k *testKey, cmd byte, params any) (ctap2.Status, map[int]any) {
	t.Helper()
	st, body := k.raw(cmd, mustCBOR(t, params))
	var m map[int]any
	if st == ctap2.StatusOK && len(body) > 0 {
		if err := cbor.Unmarshal(body, &m); err != nil {
			t.Fatal(err)
		}
	}
	return st, m
}

// TestCredentialLists (issue 16 points 4 and 5): an empty allowList or
// excludeList is no list; a descriptor without type or id is
// CTAP2_ERR_MISSING_PARAMETER; one of an unknown type is skipped.
func TestCredentialLists(t *testing.T) {
	k := newKey(t)
	ctx := context.Background()
	var ids [][]byte
	for i := range 2 {
		att, err := k.c.MakeCredential(ctx, mcRequest(t, "example.com", []byte{byte(i + 1)}, true))
		if err != nil {
			t.Fatal(err)
		}
		id, _ := att.CredentialID()
		ids = append(ids, id)
	}
	cdh := make([]byte, 32)
	pk := func(id []byte) map[string]any { return map[string]any{"type": "public-key", "id": id} }
	ga := func(list []any) map[int]any { return map[int]any{1: "example.com", 2: cdh, 3: list} }
	mc := func(list []any) map[int]any {
		return map[int]any{1: cdh, 2: map[string]any{"id": "example.com"}, 3: map[string]any{"id": []byte{9}},
			4: []any{map[string]any{"type": "public-key", "alg": -7}}, 5: list}
	}
	for _, tc := range []struct {
		name string
		cmd  byte
		req  map[int]any
		want ctap2.Status
	}{
		{"ga empty allowList", ctap2.CmdGetAssertion, ga([]any{}), ctap2.StatusOK},
		{"ga descriptor without id", ctap2.CmdGetAssertion, ga([]any{pk(ids[0]), map[string]any{"type": "public-key"}}), ctap2.ErrMissingParameter},
		{"ga descriptor without type", ctap2.CmdGetAssertion, ga([]any{map[string]any{"id": ids[0]}}), ctap2.ErrMissingParameter},
		{"ga unknown type skipped", ctap2.CmdGetAssertion, ga([]any{map[string]any{"type": "future-key", "id": ids[1]}, pk(ids[0])}), ctap2.StatusOK},
		{"ga only unknown types", ctap2.CmdGetAssertion, ga([]any{map[string]any{"type": "future-key", "id": ids[1]}}), ctap2.ErrNoCredentials},
		{"mc empty excludeList", ctap2.CmdMakeCredential, mc([]any{}), ctap2.StatusOK},
		{"mc descriptor without id", ctap2.CmdMakeCredential, mc([]any{map[string]any{"type": "public-key"}}), ctap2.ErrMissingParameter},
		{"mc descriptor without type", ctap2.CmdMakeCredential, mc([]any{map[string]any{"id": ids[0]}}), ctap2.ErrMissingParameter},
		{"mc unknown type skipped", ctap2.CmdMakeCredential, mc([]any{map[string]any{"type": "future-key", "id": ids[0]}}), ctap2.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, resp := rawCall(t, k, tc.cmd, tc.req)
			if st != tc.want {
				t.Fatalf("status %v, want %v", st, tc.want)
			}
			if tc.name == "ga empty allowList" {
				if resp[5] != uint64(2) {
					t.Errorf("numberOfCredentials %v, want 2: the discoverable credentials", resp[5])
				}
				next, err := k.c.GetNextAssertion(ctx)
				if err != nil || next == nil {
					t.Errorf("getNextAssertion: %v", err)
				}
			}
		})
	}
}

// TestUserMember (issue 16 points 7 and 10): one account gives only its
// user id; name and displayName come with several accounts after UV; an
// empty user id gives no user member, never a null id.
func TestUserMember(t *testing.T) {
	ctx := context.Background()
	for _, proto := range []uint64{1, 2} {
		k := pinKey(t)
		registerN(t, k, proto, "one.example", true, 1)
		registerN(t, k, proto, "two.example", true, 2)
		tok, _ := k.c.PINToken(ctx, proto, flowPIN, ctap2.PermGetAssertion, "one.example")
		one, err := k.c.GetAssertion(ctx, gaRequest("one.example", true, tok))
		if err != nil {
			t.Fatal(err)
		}
		if one.User == nil || len(one.User.ID) == 0 || one.User.Name != "" || one.User.DisplayName != "" {
			t.Errorf("protocol %d: single account: user %+v, want the id only", proto, one.User)
		}
		tok, _ = k.c.PINToken(ctx, proto, flowPIN, ctap2.PermGetAssertion, "two.example")
		two, err := k.c.GetAssertion(ctx, gaRequest("two.example", true, tok))
		if err != nil {
			t.Fatal(err)
		}
		next, err := k.c.GetNextAssertion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range []*ctap2.GetAssertionResponse{two, next} {
			if r.User == nil || r.User.Name == "" || r.User.DisplayName == "" {
				t.Errorf("protocol %d: several accounts after UV: user %+v, want name and displayName", proto, r.User)
			}
		}
		// Without UV (up only, no token): ids only. credProtect is unset,
		// so the credentials are discoverable without UV.
		k.a.PowerCycle()
		plain, err := k.c.GetAssertion(ctx, &ctap2.GetAssertionRequest{RPID: "two.example", ClientDataHash: make([]byte, 32)})
		if err != nil {
			t.Fatalf("protocol %d: assertion without UV: %v", proto, err)
		}
		if plain.User == nil || plain.User.Name != "" || plain.NumberOfCredentials != 2 {
			t.Errorf("protocol %d: several accounts without UV: user %+v, want the id only", proto, plain.User)
		}
	}

	// Point 10: an empty user ID.
	k := newKey(t)
	st, _ := rawCall(t, k, ctap2.CmdMakeCredential, map[int]any{1: make([]byte, 32), 2: map[string]any{"id": "example.com"},
		3: map[string]any{"id": []byte{}, "name": "nobody"}, 4: []any{map[string]any{"type": "public-key", "alg": -7}}, 7: map[string]bool{"rk": true}})
	if st != ctap2.StatusOK {
		t.Fatalf("makeCredential with an empty user id: %v", st)
	}
	st, resp := rawCall(t, k, ctap2.CmdGetAssertion, map[int]any{1: "example.com", 2: make([]byte, 32)})
	if st != ctap2.StatusOK {
		t.Fatalf("getAssertion: %v", st)
	}
	if u, ok := resp[4]; ok {
		t.Errorf("user member %#v for an empty user id, want none", u)
	}
}

// TestEntityTruncation (issue 11 point 16): rp.name, user.name and
// user.displayName are kept to 64 bytes, cut at a UTF-8 boundary (CTAP 2.1
// section 6.1.2).
func TestEntityTruncation(t *testing.T) {
	ctx := context.Background()
	k := pinKey(t)
	long := "a" + strings.Repeat("é", 100) // 201 bytes: 64 would split an é
	tok, _ := k.c.PINToken(ctx, 2, flowPIN, ctap2.PermMakeCredential, "")
	req := mcRequest(t, "example.com", []byte{1}, true)
	req.RP.Name, req.User.Name, req.User.DisplayName = long, long, "Ünïcode "+long
	req.PinUvAuthParam, req.PinUvAuthProtocol = withToken(tok, req.ClientDataHash)
	att, err := k.c.MakeCredential(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := att.CredentialID()
	check := func(what, got, full string) {
		t.Helper()
		if len(got) > 64 || len(got) < 61 || !utf8.ValidString(got) || !strings.HasPrefix(full, got) {
			t.Errorf("%s: %d bytes %q, want a valid prefix of at most 64 bytes", what, len(got), got)
		}
	}
	tok, _ = k.c.PINToken(ctx, 2, flowPIN, ctap2.PermCredentialMgmt, "")
	cm := k.c.CredentialManagement(tok, false)
	rps, err := cm.RPs(ctx)
	if err != nil || len(rps) != 1 {
		t.Fatalf("RPs: %v %v", rps, err)
	}
	check("rp.name", rps[0].Name, long)
	creds, err := cm.Credentials(ctx, rps[0])
	if err != nil || len(creds) != 1 {
		t.Fatalf("credentials: %v", err)
	}
	check("user.name", creds[0].User.Name, long)
	check("user.displayName", creds[0].User.DisplayName, "Ünïcode "+long)
	// updateUserInformation truncates too.
	if err := cm.UpdateUser(ctx, id, ctap2.UserEntity{ID: []byte{1}, Name: long, DisplayName: long}); err != nil {
		t.Fatal(err)
	}
	creds, _ = cm.Credentials(ctx, rps[0])
	check("updated user.name", creds[0].User.Name, long)
}

// TestPreviewCredMgmt (issue 16 point 9): the preview command 0x41 takes a
// getPinToken token, as FIDO_2_1_PRE keys do; 0x0A wants the cm
// permission.
func TestPreviewCredMgmt(t *testing.T) {
	ctx := context.Background()
	for _, proto := range []uint64{1, 2} {
		k := pinKey(t)
		registerN(t, k, proto, "example.com", true, 2)
		info, _ := k.c.GetInfo(ctx)
		if !info.Options["credentialMgmtPreview"] || !strings.Contains(strings.Join(info.Versions, " "), "FIDO_2_1_PRE") {
			t.Errorf("getInfo: versions %v options %v, want FIDO_2_1_PRE and credentialMgmtPreview", info.Versions, info.Options)
		}
		tok, err := k.c.PINToken(ctx, proto, flowPIN, 0, "") // getPinToken (0x05)
		if err != nil {
			t.Fatal(err)
		}
		all, err := k.c.CredentialManagement(tok, true).All(ctx)
		if err != nil || len(all) != 2 {
			t.Errorf("protocol %d: preview enumeration with a getPinToken token: %d credentials, %v", proto, len(all), err)
		}
		_, _, err = k.c.CredentialManagement(tok, false).Metadata(ctx)
		wantStatus(t, err, ctap2.ErrPINAuthInvalid)
	}
}

// TestEnterpriseAttestation (issue 16 point 8): with ep enabled,
// platform-managed enterprise attestation (2) is signed by a certificate
// of this key alone; vendor-facilitated (1) only for the configured RP
// IDs; otherwise the ordinary attestation without epAtt. go-webauthn
// verifies every statement.
func TestEnterpriseAttestation(t *testing.T) {
	ctx := context.Background()
	k := pinKey(t, func(o *ctap2.Options) { o.EnterpriseRPIDs = []string{"corp.example"} })
	tok, _ := k.c.PINToken(ctx, 2, flowPIN, ctap2.PermAuthenticatorCfg, "")
	wantStatus(t, k.c.EnableEnterpriseAttestation(ctx, tok), ctap2.StatusOK)
	other := pinKey(t)
	otherTok, _ := other.c.PINToken(ctx, 2, flowPIN, ctap2.PermAuthenticatorCfg, "")
	wantStatus(t, other.c.EnableEnterpriseAttestation(ctx, otherTok), ctap2.StatusOK)

	leaf := func(k *testKey, rpID string, ep uint64) (*x509.Certificate, bool) {
		t.Helper()
		rp, err := webauthntest.New(rpID)
		if err != nil {
			t.Fatal(err)
		}
		u := webauthntest.NewUser("alice")
		cer, err := rp.BeginRegistration(u, webauthn.WithConveyancePreference(protocol.PreferEnterpriseAttestation))
		if err != nil {
			t.Fatal(err)
		}
		tok, _ := k.c.PINToken(ctx, 2, flowPIN, ctap2.PermMakeCredential, rpID)
		req := mcRequest(t, rpID, u.ID, false)
		req.ClientDataHash = cer.ClientDataHash
		req.EnterpriseAttestation = &ep
		req.PinUvAuthParam, req.PinUvAuthProtocol = withToken(tok, req.ClientDataHash)
		att, err := k.c.MakeCredential(ctx, req)
		if err != nil {
			t.Fatalf("makeCredential ep=%d: %v", ep, err)
		}
		id, _ := att.CredentialID()
		cred, err := rp.FinishRegistration(u, cer, id, att.Format, att.AuthData, att.AttStmt)
		if err != nil {
			t.Fatalf("go-webauthn rejected ep=%d at %s: %v", ep, rpID, err)
		}
		checkAttestationChain(t, k, cred)
		var stmt struct {
			X5C [][]byte `cbor:"x5c"`
		}
		if err := ctap2.Unmarshal(att.AttStmt, &stmt); err != nil || len(stmt.X5C) == 0 {
			t.Fatalf("no x5c: %v", err)
		}
		c, err := x509.ParseCertificate(stmt.X5C[0])
		if err != nil {
			t.Fatal(err)
		}
		return c, att.EPAtt
	}
	batch, ep := leaf(k, "example.com", 1) // not configured: ordinary attestation
	if ep {
		t.Error("vendor-facilitated for an RP ID not configured: epAtt set")
	}
	vendor, ep := leaf(k, "corp.example", 1)
	if !ep || bytes.Equal(vendor.Raw, batch.Raw) || vendor.Subject.SerialNumber == "" {
		t.Errorf("vendor-facilitated for a configured RP ID: epAtt=%v, subject %v: want a certificate of this key", ep, vendor.Subject)
	}
	platform, ep := leaf(k, "example.com", 2)
	if !ep || !samePublicKey(platform, vendor) || platform.Subject.SerialNumber != vendor.Subject.SerialNumber {
		t.Errorf("platform-managed: epAtt=%v, subject %v: want the same enterprise key as %v", ep, platform.Subject, vendor.Subject)
	}
	otherLeaf, _ := leaf(other, "example.com", 2)
	if samePublicKey(otherLeaf, platform) || otherLeaf.Subject.SerialNumber == platform.Subject.SerialNumber {
		t.Error("two keys give the same enterprise attestation certificate: it must identify the key")
	}
	// Without ep enabled, an enterpriseAttestation parameter is refused.
	plain := pinKey(t)
	ptok, _ := plain.c.PINToken(ctx, 2, flowPIN, ctap2.PermMakeCredential, "")
	req := mcRequest(t, "example.com", []byte{1}, false)
	two := uint64(2)
	req.EnterpriseAttestation = &two
	req.PinUvAuthParam, req.PinUvAuthProtocol = withToken(ptok, req.ClientDataHash)
	_, err := plain.c.MakeCredential(ctx, req)
	wantStatus(t, err, ctap2.ErrInvalidParameter)
}

func samePublicKey(a, b *x509.Certificate) bool {
	return bytes.Equal(a.RawSubjectPublicKeyInfo, b.RawSubjectPublicKeyInfo)
}
