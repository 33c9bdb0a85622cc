package ctap2_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/ctap2/client"
	"github.com/vkey-dev/vkey/keystore"
)

// mcExtensions decodes the extension outputs of a makeCredential's authData.
func mcExtensions(t *testing.T, att *client.Attestation) map[string]cbor.RawMessage {
	t.Helper()
	id, err := att.CredentialID()
	if err != nil {
		t.Fatal(err)
	}
	if att.AuthData[32]&0x80 == 0 {
		return nil
	}
	dec := cbor.NewDecoder(bytes.NewReader(att.AuthData[37+16+2+len(id):]))
	var key map[any]any
	if err := dec.Decode(&key); err != nil {
		t.Fatal(err)
	}
	var out map[string]cbor.RawMessage
	if err := dec.Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestHMACSecretMC (CTAP 2.2 section 12.7): hmac-secret-mc gives at
// makeCredential, under both PIN protocols, with and without UV, for
// discoverable and non-discoverable credentials, the outputs a later
// getAssertion's hmac-secret gives for the same salts (what WebAuthn's PRF
// extension needs at registration); a saltAuth that does not verify is
// CTAP2_ERR_PIN_AUTH_INVALID; without hmac-secret: true it is ignored.
func TestHMACSecretMC(t *testing.T) {
	ctx := context.Background()
	salt1, salt2 := bytes.Repeat([]byte{3}, 32), bytes.Repeat([]byte{4}, 32)
	for _, proto := range []uint64{1, 2} {
		for _, uv := range []bool{false, true} {
			for _, rk := range []bool{false, true} {
				t.Run(fmt.Sprintf("protocol%d/uv=%v/rk=%v", proto, uv, rk), func(t *testing.T) {
					k := newKey(t)
					if uv {
						wantStatus(t, k.c.SetPIN(ctx, proto, "1234"), ctap2.StatusOK)
					}
					hs, err := k.c.NewHMACSecret(ctx, proto, salt1, salt2)
					if err != nil {
						t.Fatal(err)
					}
					req := mcRequest(t, "example.com", []byte{1}, rk)
					req.Extensions = ctap2.MakeCredentialExtensions{HMACSecret: true, HMACSecretMC: hs.Input}
					if uv {
						tok, err := k.c.PINToken(ctx, proto, "1234", ctap2.PermMakeCredential|ctap2.PermGetAssertion, "example.com")
						if err != nil {
							t.Fatal(err)
						}
						req.PinUvAuthParam, req.PinUvAuthProtocol = tok.Param(req.ClientDataHash), tok.Version()
					}
					att, err := k.c.MakeCredential(ctx, req)
					if err != nil {
						t.Fatal(err)
					}
					ext := mcExtensions(t, att)
					var enc []byte
					if err := cbor.Unmarshal(ext["hmac-secret-mc"], &enc); err != nil {
						t.Fatalf("no hmac-secret-mc output (%v): %v", ext, err)
					}
					atMC, err := hs.Output(enc)
					if err != nil || len(atMC) != 64 {
						t.Fatalf("hmac-secret-mc output of %d bytes: %v", len(atMC), err)
					}

					id, _ := att.CredentialID()
					if atGA := hmacSecretAssertion(t, k, proto, id, uv, salt1, salt2); !bytes.Equal(atGA, atMC) {
						t.Errorf("getAssertion gives %x, makeCredential gave %x", atGA, atMC)
					}
				})
			}
		}
	}

	k := newKey(t)
	hs, err := k.c.NewHMACSecret(ctx, 2, salt1)
	if err != nil {
		t.Fatal(err)
	}
	in := hs.Input
	bad := *in
	bad.SaltAuth = bytes.Repeat([]byte{0}, len(in.SaltAuth))
	req := mcRequest(t, "example.com", []byte{1}, false)
	req.Extensions = ctap2.MakeCredentialExtensions{HMACSecret: true, HMACSecretMC: &bad}
	_, err = k.c.MakeCredential(ctx, req)
	wantStatus(t, err, ctap2.ErrPINAuthInvalid)
	if k.up.n.Load() != 0 {
		t.Error("a bad saltAuth asked for a touch")
	}

	req.Extensions = ctap2.MakeCredentialExtensions{HMACSecretMC: in}
	att, err := k.c.MakeCredential(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := mcExtensions(t, att)["hmac-secret-mc"]; ok {
		t.Error("hmac-secret-mc without hmac-secret: true gave an output")
	}
	info, _ := k.c.GetInfo(ctx)
	if !slices.Contains(info.Extensions, "hmac-secret-mc") {
		t.Errorf("getInfo extensions %v lack hmac-secret-mc", info.Extensions)
	}
}

// TestAttestationFormatsPreference (CTAP 2.2 sections 6.1.2 and 6.4):
// getInfo lists the formats the key gives, the configured one first, and
// maxPINLength; makeCredential's attestationFormatsPreference picks the
// first listed format the key can give for the credential, else the
// configured one; a request without it (a CTAP 2.1 platform) gets the
// configured format as before.
func TestAttestationFormatsPreference(t *testing.T) {
	ctx := context.Background()
	k := newKey(t, func(o *ctap2.Options) { o.Attestation = ctap2.AttestationNone })
	info, err := k.c.GetInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(info.AttestationFormats, []string{"none", "packed"}) || info.MaxPINLength != 63 {
		t.Errorf("attestationFormats %v, maxPINLength %d: want [none packed] and 63", info.AttestationFormats, info.MaxPINLength)
	}
	for _, tc := range []struct {
		pref []string
		want string
		x5c  bool
	}{
		{nil, "none", false},
		{[]string{"tpm", "packed", "none"}, "packed", true}, // no TPM key: tpm is skipped
		{[]string{"fido-u2f", "none"}, "none", false},
		{[]string{"apple"}, "none", false},
	} {
		req := mcRequest(t, "example.com", []byte{1}, false)
		req.AttestationFormatsPreference = tc.pref
		att, err := k.c.MakeCredential(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		var stmt map[string]cbor.RawMessage
		_ = cbor.Unmarshal(att.AttStmt, &stmt)
		if _, hasX5C := stmt["x5c"]; att.Format != tc.want || hasX5C != tc.x5c {
			t.Errorf("preference %v: format %q (x5c %v), want %q (x5c %v)", tc.pref, att.Format, hasX5C, tc.want, tc.x5c)
		}
	}
}

// TestThirdPartyPayment (CTAP 2.2 section 12.9): a credential made with
// thirdPartyPayment: true says so at getAssertion (thirdPartyPayment: true
// in the extension outputs when asked) and in credential management
// (0x0C), discoverable or not; another says false; a getAssertion that
// does not ask (a CTAP 2.1 platform) gets no output.
func TestThirdPartyPayment(t *testing.T) {
	ctx := context.Background()
	k := newKey(t)
	ids := map[bool][]byte{}
	for _, pay := range []bool{true, false} {
		for _, rk := range []bool{false, true} {
			req := mcRequest(t, fmt.Sprintf("pay%v.example", pay), []byte{1}, rk)
			if pay {
				req.Extensions = ctap2.MakeCredentialExtensions{ThirdPartyPayment: true}
			}
			att, err := k.c.MakeCredential(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			id, _ := att.CredentialID()
			for _, ask := range []bool{true, false} {
				ga := &ctap2.GetAssertionRequest{RPID: req.RP.ID, ClientDataHash: make([]byte, 32),
					AllowList: []ctap2.CredentialDescriptor{{Type: "public-key", ID: id}}}
				if ask {
					ga.Extensions = ctap2.GetAssertionExtensions{ThirdPartyPayment: true}
				}
				resp, err := k.c.GetAssertion(ctx, ga)
				if err != nil {
					t.Fatal(err)
				}
				var ext map[string]bool
				if resp.AuthData[32]&0x80 != 0 {
					_ = cbor.Unmarshal(resp.AuthData[37:], &ext)
				}
				got, present := ext["thirdPartyPayment"]
				if present != ask || got != (pay && ask) {
					t.Errorf("payment %v rk %v asked %v: output %v (present %v)", pay, rk, ask, got, present)
				}
			}
			if rk {
				ids[pay] = id
			}
		}
	}
	wantStatus(t, k.c.SetPIN(ctx, 2, "1234"), ctap2.StatusOK)
	tok, err := k.c.PINToken(ctx, 2, "1234", ctap2.PermCredentialMgmt, "")
	if err != nil {
		t.Fatal(err)
	}
	cm := k.c.CredentialManagement(tok, false)
	for _, pay := range []bool{true, false} {
		h := sha256.Sum256([]byte(fmt.Sprintf("pay%v.example", pay)))
		creds, err := cm.Credentials(ctx, client.RP{ID: fmt.Sprintf("pay%v.example", pay), IDHash: h[:]})
		if err != nil || len(creds) != 1 {
			t.Fatalf("enumerate: %v (%d)", err, len(creds))
		}
		// Present for both: python-fido2 2.x read the absent field of an
		// ordinary credential as None, not false.
		if got := creds[0].ThirdPartyPayment; got == nil || *got != pay || !bytes.Equal(creds[0].ID, ids[pay]) {
			t.Errorf("credential management thirdPartyPayment %v, want %v", got, pay)
		}
	}

	// A profile's key (no thirdPartyPayment in its getInfo) keeps the
	// CTAP 2.1 response: no 0x0C.
	p, _ := ctap2.LookupProfile("nitrokey3")
	k = newKey(t, func(o *ctap2.Options) { o.Profile = &p })
	if _, err := k.c.MakeCredential(ctx, mcRequest(t, "plain.example", []byte{1}, true)); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, k.c.SetPIN(ctx, 2, "1234"), ctap2.StatusOK)
	tok, err = k.c.PINToken(ctx, 2, "1234", ctap2.PermCredentialMgmt, "")
	if err != nil {
		t.Fatal(err)
	}
	creds, err := k.c.CredentialManagement(tok, false).All(ctx)
	if err != nil || len(creds) != 1 {
		t.Fatalf("enumerate under a profile: %v (%d)", err, len(creds))
	}
	if creds[0].ThirdPartyPayment != nil {
		t.Errorf("a profile's key reports thirdPartyPayment %v in credential management", *creds[0].ThirdPartyPayment)
	}
}

// shapeOf returns k's getInfo with its algorithms' COSE numbers and its
// options' names, sorted.
func shapeOf(t *testing.T, k *testKey) (info *ctap2.GetInfoResponse, algs []int64, opts []string) {
	t.Helper()
	info, err := k.c.GetInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range info.Algorithms {
		algs = append(algs, a.Alg)
	}
	for name := range info.Options {
		opts = append(opts, name)
	}
	slices.Sort(opts)
	return info, algs, opts
}

// TestProfile (issue 13, `vkey run --profile yubikey5-fw5.4`): getInfo
// has the profile's versions, extensions, options, algorithms and limits;
// the 26th discoverable credential is CTAP2_ERR_KEY_STORE_FULL, as on the
// key, while replacing a stored one still works; a request past its
// maxMsgSize is refused (by CTAPHID, see cmd/vkey's TestE2EProfile).
func TestProfile(t *testing.T) {
	ctx := context.Background()
	p, ok := ctap2.LookupProfile("yubikey5-fw5.4")
	if !ok {
		t.Fatal("no yubikey5-fw5.4 profile")
	}
	k := newKey(t, func(o *ctap2.Options) { o.Profile = &p })
	info, algs, opts := shapeOf(t, k)
	if !slices.Equal(info.Versions, []string{"U2F_V2", "FIDO_2_0", "FIDO_2_1_PRE"}) || !slices.Equal(info.Extensions, []string{"credProtect", "hmac-secret"}) ||
		!slices.Equal(algs, []int64{-7, -8}) || !slices.Equal(opts, []string{"clientPin", "credentialMgmtPreview", "plat", "rk", "up"}) ||
		info.MaxMsgSize != 1200 || info.MaxCredentialCountInList != 8 || info.MaxCredentialIDLength != 128 ||
		info.RemainingDiscoverableCredentials != nil || info.AttestationFormats != nil || info.MaxSerializedLargeBlobArray != 0 ||
		!bytes.Equal(info.AAGUID, ctap2.DefaultAAGUID[:]) {
		t.Errorf("getInfo %+v does not have the profile's shape", info)
	}
	for i := range 25 {
		if _, err := k.c.MakeCredential(ctx, mcRequest(t, "example.com", []byte{byte(i)}, true)); err != nil {
			t.Fatalf("discoverable credential %d: %v", i+1, err)
		}
	}
	_, err := k.c.MakeCredential(ctx, mcRequest(t, "example.com", []byte{99}, true))
	wantStatus(t, err, ctap2.ErrKeyStoreFull)
	if _, err := k.c.MakeCredential(ctx, mcRequest(t, "example.com", []byte{3}, true)); err != nil {
		t.Errorf("replacing a stored credential at capacity: %v", err)
	}
	if _, err := k.c.MakeCredential(ctx, mcRequest(t, "example.com", []byte{99}, false)); err != nil {
		t.Errorf("a non-discoverable credential at capacity: %v", err)
	}
	if _, err := k.c.MakeCredential(ctx, mcRequest(t, "example.com", []byte{99}, false, -35)); err == nil {
		t.Error("ES384, which the profile does not offer, was accepted")
	}
}

// TestProfiles (issue 13): each further profile's getInfo has its key's
// figures (sources in profile.go), vkey's credential IDs fit its
// maxCredentialIdLength, a discoverable credential past its capacity is
// CTAP2_ERR_KEY_STORE_FULL, an algorithm it lacks is
// CTAP2_ERR_UNSUPPORTED_ALGORITHM and a PIN protocol it lacks is
// CTAP1_ERR_INVALID_PARAMETER.
func TestProfiles(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name                     string
		versions, opts           []string
		algs                     []int64
		protocols                []uint64
		msg, inList, idLen, full int
		missingAlg               int64
	}{
		{name: "nitrokey3", versions: []string{"U2F_V2", "FIDO_2_0", "FIDO_2_1"},
			opts: []string{"clientPin", "credMgmt", "pinUvAuthToken", "plat", "rk", "up"}, algs: nil, protocols: []uint64{2, 1},
			msg: 3072, inList: 10, idLen: 255, full: 10, missingAlg: -35},
		{name: "feitian-epass-fido", versions: []string{"U2F_V2", "FIDO_2_0", "FIDO_2_1_PRE"},
			opts: []string{"clientPin", "credentialMgmtPreview", "plat", "rk", "up"}, algs: []int64{-7}, protocols: []uint64{1},
			msg: 1024, inList: 6, idLen: 96, missingAlg: -8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, ok := ctap2.LookupProfile(tc.name)
			if !ok {
				t.Fatalf("no %s profile", tc.name)
			}
			if p.Source == "" {
				t.Error("the profile names no source")
			}
			k := newKey(t, func(o *ctap2.Options) { o.Profile = &p })
			info, algs, opts := shapeOf(t, k)
			if !slices.Equal(info.Versions, tc.versions) || !slices.Equal(info.Extensions, []string{"credProtect", "hmac-secret"}) ||
				!slices.Equal(algs, tc.algs) || !slices.Equal(opts, tc.opts) || !slices.Equal(info.PinUvAuthProtocols, tc.protocols) ||
				info.MaxMsgSize != uint64(tc.msg) || info.MaxCredentialCountInList != uint64(tc.inList) || info.MaxCredentialIDLength != uint64(tc.idLen) ||
				info.RemainingDiscoverableCredentials != nil || info.FirmwareVersion != 0 || !bytes.Equal(info.AAGUID, ctap2.DefaultAAGUID[:]) {
				t.Errorf("getInfo %+v does not have the profile's shape", info)
			}
			att, err := k.c.MakeCredential(ctx, mcRequest(t, "example.com", []byte{200}, false))
			if err != nil {
				t.Fatal(err)
			}
			if id, _ := att.CredentialID(); len(id) > tc.idLen {
				t.Errorf("a %d-byte credential ID, past the profile's maxCredentialIdLength %d", len(id), tc.idLen)
			}
			_, err = k.c.MakeCredential(ctx, mcRequest(t, "example.com", []byte{201}, false, tc.missingAlg))
			wantStatus(t, err, ctap2.ErrUnsupportedAlgorithm)
			if tc.full > 0 {
				for i := range tc.full {
					if _, err := k.c.MakeCredential(ctx, mcRequest(t, "example.com", []byte{byte(i)}, true)); err != nil {
						t.Fatalf("discoverable credential %d: %v", i+1, err)
					}
				}
				_, err = k.c.MakeCredential(ctx, mcRequest(t, "example.com", []byte{99}, true))
				wantStatus(t, err, ctap2.ErrKeyStoreFull)
			}
			for _, proto := range []uint64{1, 2} {
				err := k.c.SetPIN(ctx, proto, "1234")
				switch {
				case !slices.Contains(tc.protocols, proto):
					wantStatus(t, err, ctap2.ErrInvalidParameter)
				case err != nil && !errors.Is(err, ctap2.ErrNotAllowed):
					t.Errorf("setPIN under protocol %d: %v", proto, err)
				}
			}
		})
	}
}

// TestPersistentToken (CTAP 2.2, pcmr and perCredMgmtRO): getInfo lists
// perCredMgmtRO; a token asked for with pcmr alone, under either protocol,
// reads credential metadata, RPs and credentials, also after a power cycle
// and after an ordinary token was issued; it cannot delete or update a
// credential nor serve the preview command (CTAP2_ERR_PIN_AUTH_INVALID);
// pcmr with another permission is CTAP1_ERR_INVALID_PARAMETER; a PIN
// change invalidates it.
func TestPersistentToken(t *testing.T) {
	ctx := context.Background()
	for _, proto := range []uint64{1, 2} {
		t.Run(fmt.Sprintf("protocol%d", proto), func(t *testing.T) {
			k := newKey(t)
			info, _ := k.c.GetInfo(ctx)
			if !info.Options["perCredMgmtRO"] {
				t.Error("getInfo lacks perCredMgmtRO")
			}
			wantStatus(t, k.c.SetPIN(ctx, proto, "1234"), ctap2.StatusOK)
			att, err := k.c.MakeCredential(ctx, func() *ctap2.MakeCredentialRequest {
				req := mcRequest(t, "example.com", []byte{1}, true)
				tok, _ := k.c.PINToken(ctx, proto, "1234", ctap2.PermMakeCredential, "example.com")
				req.PinUvAuthParam, req.PinUvAuthProtocol = tok.Param(req.ClientDataHash), tok.Version()
				return req
			}())
			if err != nil {
				t.Fatal(err)
			}
			id, _ := att.CredentialID()

			_, err = k.c.PINToken(ctx, proto, "1234", ctap2.PermPersistentCredMgmtRO|ctap2.PermCredentialMgmt, "")
			wantStatus(t, err, ctap2.ErrInvalidParameter)
			ptok, err := k.c.PINToken(ctx, proto, "1234", ctap2.PermPersistentCredMgmtRO, "")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := k.c.PINToken(ctx, proto, "1234", ctap2.PermGetAssertion, "other.example"); err != nil {
				t.Fatal(err) // an ordinary token, bound to another RP, beside it
			}
			k.a.PowerCycle()
			cm := k.c.CredentialManagement(ptok, false)
			if n, _, err := cm.Metadata(ctx); err != nil || n != 1 {
				t.Fatalf("metadata with the persistent token: %d, %v", n, err)
			}
			creds, err := cm.All(ctx)
			if err != nil || len(creds) != 1 || !bytes.Equal(creds[0].ID, id) {
				t.Fatalf("enumeration with the persistent token: %v (%d)", err, len(creds))
			}
			wantStatus(t, cm.Delete(ctx, id), ctap2.ErrPINAuthInvalid)
			wantStatus(t, cm.UpdateUser(ctx, id, ctap2.UserEntity{ID: []byte{1}, Name: "x"}), ctap2.ErrPINAuthInvalid)
			_, _, err = k.c.CredentialManagement(ptok, true).Metadata(ctx)
			wantStatus(t, err, ctap2.ErrPINAuthInvalid)

			wantStatus(t, k.c.ChangePIN(ctx, proto, "1234", "5678"), ctap2.StatusOK)
			_, _, err = cm.Metadata(ctx)
			wantStatus(t, err, ctap2.ErrPINAuthInvalid)
		})
	}
}

// TestPersistentTokenRestart: the persistent token lives in the store
// (CTAP 2.2: it lasts until a PIN change or reset, not until power-off),
// so vkey restarted on the same file store still accepts it for
// credential metadata; after changePIN, and after authenticatorReset, it
// is refused with CTAP2_ERR_PIN_AUTH_INVALID.
func TestPersistentTokenRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	master := make([]byte, 32)
	var store *keystore.File
	restart := func() *testKey {
		if store != nil {
			if err := store.Close(); err != nil {
				t.Fatal(err)
			}
		}
		s, err := keystore.OpenFile(dir, keystore.FileOptions{MasterKey: master})
		if err != nil {
			t.Fatal(err)
		}
		store = s
		return newKey(t, func(o *ctap2.Options) { o.Store = s })
	}
	t.Cleanup(func() { store.Close() })
	for _, after := range []string{"changePIN", "reset"} {
		t.Run(after, func(t *testing.T) {
			k := restart()
			if after == "reset" {
				wantStatus(t, k.c.Reset(ctx), ctap2.StatusOK) // a fresh state
			}
			wantStatus(t, k.c.SetPIN(ctx, 2, "1234"), ctap2.StatusOK)
			ptok, err := k.c.PINToken(ctx, 2, "1234", ctap2.PermPersistentCredMgmtRO, "")
			if err != nil {
				t.Fatal(err)
			}
			k = restart()
			if n, _, err := k.c.CredentialManagement(ptok, false).Metadata(ctx); err != nil || n != 0 {
				t.Fatalf("metadata with the persistent token after a restart: %d, %v", n, err)
			}
			if after == "changePIN" {
				wantStatus(t, k.c.ChangePIN(ctx, 2, "1234", "5678"), ctap2.StatusOK)
			} else {
				wantStatus(t, k.c.Reset(ctx), ctap2.StatusOK)
			}
			k = restart()
			_, _, err = k.c.CredentialManagement(ptok, false).Metadata(ctx)
			wantStatus(t, err, ctap2.ErrPINAuthInvalid)
		})
	}
}

// decryptEncIdentifier reads getInfo's encIdentifier as python-fido2's
// Info.get_identifier does: HKDF-SHA-256 (32 zero bytes of salt, info
// "encIdentifier", 16 bytes) of the persistent token, AES-128-CBC with the
// first 16 bytes as IV.
func decryptEncIdentifier(t *testing.T, token, enc []byte) []byte {
	t.Helper()
	if len(enc) != 32 {
		t.Fatalf("encIdentifier of %d bytes, want 32 (IV and one block)", len(enc))
	}
	key, err := hkdf.Key(sha256.New, token, make([]byte, 32), "encIdentifier", 16)
	if err != nil {
		t.Fatal(err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 16)
	cipher.NewCBCDecrypter(block, enc[:16]).CryptBlocks(out, enc[16:])
	return out
}

// TestEncIdentifier (CTAP 2.2 section 6.4, encIdentifier): absent until a
// persistent token exists; then each getInfo carries a fresh encryption
// (another IV) of one identifier, which survives a restart and a PIN
// change (a new persistent token reads the same identifier) and is new
// after authenticatorReset; a profile's key does not report it.
func TestEncIdentifier(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var store *keystore.File
	restart := func() *testKey {
		if store != nil {
			store.Close()
		}
		s, err := keystore.OpenFile(dir, keystore.FileOptions{MasterKey: make([]byte, 32)})
		if err != nil {
			t.Fatal(err)
		}
		store = s
		return newKey(t, func(o *ctap2.Options) { o.Store = s })
	}
	t.Cleanup(func() { store.Close() })
	identifier := func(k *testKey, pin string) []byte {
		t.Helper()
		tok, err := k.c.PINToken(ctx, 2, pin, ctap2.PermPersistentCredMgmtRO, "")
		if err != nil {
			t.Fatal(err)
		}
		a, _ := k.c.GetInfo(ctx)
		b, _ := k.c.GetInfo(ctx)
		if bytes.Equal(a.EncIdentifier, b.EncIdentifier) {
			t.Error("two getInfo answers carry the same encIdentifier bytes")
		}
		id := decryptEncIdentifier(t, tok.Value, a.EncIdentifier)
		if !bytes.Equal(id, decryptEncIdentifier(t, tok.Value, b.EncIdentifier)) {
			t.Error("two getInfo answers decrypt to different identifiers")
		}
		return id
	}
	k := restart()
	wantStatus(t, k.c.SetPIN(ctx, 2, "1234"), ctap2.StatusOK)
	if info, _ := k.c.GetInfo(ctx); info.EncIdentifier != nil {
		t.Error("encIdentifier without a persistent token")
	}
	first := identifier(k, "1234")
	k = restart()
	if info, _ := k.c.GetInfo(ctx); info.EncIdentifier == nil {
		t.Error("encIdentifier gone after a restart")
	}
	wantStatus(t, k.c.ChangePIN(ctx, 2, "1234", "5678"), ctap2.StatusOK)
	if info, _ := k.c.GetInfo(ctx); info.EncIdentifier != nil {
		t.Error("encIdentifier after changePIN voided the persistent token")
	}
	if !bytes.Equal(identifier(k, "5678"), first) {
		t.Error("the identifier changed with the PIN")
	}
	wantStatus(t, k.c.Reset(ctx), ctap2.StatusOK)
	wantStatus(t, k.c.SetPIN(ctx, 2, "1234"), ctap2.StatusOK)
	if bytes.Equal(identifier(k, "1234"), first) {
		t.Error("the identifier survived authenticatorReset")
	}
	p, _ := ctap2.LookupProfile("yubikey5-fw5.4")
	k = newKey(t, func(o *ctap2.Options) { o.Profile = &p; o.Store = store })
	if info, _ := k.c.GetInfo(ctx); info.EncIdentifier != nil {
		t.Error("a profile's getInfo reports encIdentifier")
	}
}
