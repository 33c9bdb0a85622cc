package browser

import (
	"context"
	"encoding/base64"

	"github.com/fxamacker/cbor/v2"
	"github.com/vkey-dev/vkey/ctap2"
)

// Create is navigator.credentials.create() for options (the RP's
// PublicKeyCredentialCreationOptionsJSON, bare or as {"publicKey": …})
// called from a page of origin (WebAuthn L3 section 5.1.3).
func (c *Client) Create(ctx context.Context, options []byte, origin string) (*RegistrationResponse, error) {
	return c.CreateInFrame(ctx, options, origin, "")
}

// CreateInFrame is Create from a frame of origin embedded in a page of
// topOrigin: clientDataJSON then says crossOrigin and topOrigin (section
// 5.8.1) when the two differ.
func (c *Client) CreateInFrame(ctx context.Context, options []byte, origin, topOrigin string) (*RegistrationResponse, error) {
	o, err := ParseCreationOptions(options)
	if err != nil {
		return nil, err
	}
	return c.CreateWithOptions(ctx, o, origin, topOrigin)
}

// defaultCredParams is what section 5.1.3 step 10 uses when
// pubKeyCredParams is empty: ES256 and RS256.
var defaultCredParams = []CredentialParameter{{Type: "public-key", Alg: -7}, {Type: "public-key", Alg: -257}}

// credProtectLevels maps credentialProtectionPolicy to the credProtect
// extension's levels (CTAP 2.1 section 12.1).
var credProtectLevels = map[string]uint8{
	"userVerificationOptional":                     1,
	"userVerificationOptionalWithCredentialIDList": 2,
	"userVerificationRequired":                     3,
}

// CreateWithOptions is Create for parsed options.
func (c *Client) CreateWithOptions(ctx context.Context, o *CreationOptions, origin, topOrigin string) (*RegistrationResponse, error) {
	cctx, cancel := c.withTimeout(ctx, o.Timeout)
	defer cancel()
	resp, err := c.create(cctx, o, origin, topOrigin)
	if err != nil && c.retryable(cctx, err) {
		resp, err = c.create(cctx, o, origin, topOrigin)
	}
	if err != nil {
		return nil, ceremonyError(ctx, cctx, err)
	}
	return resp, nil
}

func (c *Client) create(ctx context.Context, o *CreationOptions, origin, topOrigin string) (*RegistrationResponse, error) {
	s, caller, err := c.start(ctx, origin, o.RP.ID)
	if err != nil {
		return nil, err
	}
	sel := AuthenticatorSelection{}
	if o.AuthenticatorSelection != nil {
		sel = *o.AuthenticatorSelection
	}
	if sel.AuthenticatorAttachment == "platform" {
		return nil, domError(NotAllowedError, nil, "the options ask for a platform authenticator and this one is cross-platform")
	}

	// Step 10: pubKeyCredParams, keeping the RP's order, negotiated
	// against getInfo's algorithms (CTAP 2.1 section 6.4, member 0x0A).
	params := o.PubKeyCredParams
	if len(params) == 0 {
		params = defaultCredParams
	}
	var algs []ctap2.CredentialParameter
	for _, p := range params {
		if p.Type != "public-key" || !s.supportsAlgorithm(p.Alg) {
			continue
		}
		algs = append(algs, ctap2.CredentialParameter{Type: "public-key", Alg: p.Alg})
	}
	if len(algs) == 0 {
		return nil, domError(NotSupportedError, nil, "the authenticator supports none of the algorithms of pubKeyCredParams")
	}

	// Step 22.3-22.4: resident key requirement.
	rk := false
	switch {
	case sel.ResidentKey == "required" || (sel.ResidentKey == "" && sel.RequireResidentKey):
		if !s.option("rk") {
			return nil, domError(ConstraintError, nil, "the options require a discoverable credential and the authenticator cannot store one")
		}
		rk = true
	case sel.ResidentKey == "preferred":
		// A discoverable credential needs user verification on a key with
		// a PIN (below); one the user cannot verify for gets a
		// non-discoverable credential instead, as Chromium does.
		rk = s.option("rk") && (!s.option("clientPin") || c.opts.PIN != "" || s.option("uv"))
	}

	// Extensions (sections 9 and 10; CTAP 2.1 section 12).
	var ext ctap2.MakeCredentialExtensions
	results := ClientExtensionResults{}
	in := o.Extensions
	if in.CredentialProtectionPolicy != "" {
		if level, ok := credProtectLevels[in.CredentialProtectionPolicy]; ok {
			switch {
			case s.supportsExtension("credProtect"):
				ext.CredProtect = level
			case in.EnforceCredentialProtectionPolicy && level > 1:
				// CTAP 2.1 section 12.1: the client must not create a
				// credential with less protection than enforced.
				return nil, domError(NotAllowedError, nil, "the options enforce credentialProtectionPolicy %s and the authenticator lacks credProtect", in.CredentialProtectionPolicy)
			}
		}
	}
	if in.PRF != nil && in.PRF.EvalByCredential != nil {
		// Section 10.1.4, registration: evalByCredential is an error.
		return nil, domError(NotSupportedError, nil, "prf.evalByCredential is not allowed in create()")
	}
	wantHMAC := in.HMACCreateSecret || in.PRF != nil
	ext.HMACSecret = wantHMAC && s.supportsExtension("hmac-secret")
	if lb := in.LargeBlob; lb != nil {
		if lb.Read || lb.Write != nil {
			return nil, domError(NotSupportedError, nil, "largeBlob read and write belong to get(), not create()")
		}
		ok := rk && s.option("largeBlobs") && s.supportsExtension("largeBlobKey")
		if !ok && lb.Support == "required" {
			return nil, domError(NotAllowedError, nil, "largeBlob support is required and the authenticator cannot store large blobs for this credential (it needs largeBlobs and a discoverable credential)")
		}
		ext.LargeBlobKey = ok
	}
	if in.CredBlob != nil && s.supportsExtension("credBlob") && uint64(len(in.CredBlob)) <= s.info.MaxCredBlobLength {
		ext.CredBlob = []byte(in.CredBlob)
	}
	ext.MinPINLength = in.MinPinLength && s.supportsExtension("minPinLength")

	// User verification. A discoverable credential on a key with a PIN
	// needs it (makeCredUvNotRqd covers only non-discoverable ones, CTAP
	// 2.1 section 6.4), so browsers ask for the PIN then.
	uvReq := sel.UserVerification
	if s.option("clientPin") || s.option("uv") {
		if rk || !s.option("makeCredUvNotRqd") {
			uvReq = "required"
		}
	}
	exclude := s.usableDescriptors(o.ExcludeCredentials)
	perms := ctap2.PermMakeCredential
	long := s.tooLong(exclude)
	if long {
		perms |= ctap2.PermGetAssertion
	}
	if err := s.verifyUser(ctx, uvReq, perms); err != nil {
		return nil, err
	}

	cdJSON, cdHash, err := clientData("webauthn.create", o.Challenge, caller, topOrigin)
	if err != nil {
		return nil, err
	}

	// excludeCredentials longer than one request carries: a silent
	// pre-flight finds the one the key holds, which alone is sent, so that
	// the key still asks for a touch before it says "excluded".
	if long {
		found, err := s.preflight(ctx, exclude)
		if err != nil {
			return nil, err
		}
		exclude = nil
		if found != nil {
			exclude = []ctap2.CredentialDescriptor{*found}
		}
	}
	if err := s.renewToken(ctx); err != nil {
		return nil, err
	}

	req := &ctap2.MakeCredentialRequest{
		ClientDataHash:   cdHash,
		RP:               &ctap2.RPEntity{ID: s.rpID, Name: o.RP.Name},
		User:             &ctap2.UserEntity{ID: o.User.ID, Name: o.User.Name, DisplayName: o.User.DisplayName},
		PubKeyCredParams: algs,
		ExcludeList:      exclude,
		Extensions:       ext,
	}
	var options map[string]bool
	if rk {
		options = map[string]bool{"rk": true}
	}
	req.PinUvAuthParam, req.PinUvAuthProtocol, req.Options = s.uvParams(cdHash, options)
	att, err := c.ctap.MakeCredential(ctx, req)
	if err != nil {
		return nil, ctapError("the registration", err)
	}
	ad, err := parseAuthData(att.AuthData)
	if err != nil || ad.credID == nil {
		return nil, errorf("makeCredential authenticator data: %v", err)
	}

	// Step 22.10 (attestation conveyance "none", the default): replace the
	// attestation statement with "none" and the AAGUID with zeros, unless
	// it is already self attestation with a zero AAGUID.
	format, stmt, authData := att.Format, att.AttStmt, att.AuthData
	if o.Attestation == "" || o.Attestation == "none" {
		if !isAnonymousSelf(format, stmt, ad) && format != "none" {
			authData = append([]byte(nil), authData...)
			clear(authData[ad.aaguidAt : ad.aaguidAt+16])
			format, stmt = "none", cbor.RawMessage{0xa0}
		}
	}
	attObj, err := ctap2.Marshal(struct {
		Fmt      string          `cbor:"fmt"`
		AttStmt  cbor.RawMessage `cbor:"attStmt"`
		AuthData []byte          `cbor:"authData"`
	}{format, stmt, authData})
	if err != nil {
		return nil, err
	}
	spki, alg, err := publicKeyInfo(ad.coseKey)
	if err != nil {
		return nil, errorf("%v", err)
	}

	// Client extension outputs.
	if in.CredProps {
		results.CredProps = &CredPropsOutput{RK: rk}
	}
	hmacOut := false
	if raw, ok := ad.extensions["hmac-secret"]; ok {
		_ = cbor.Unmarshal(raw, &hmacOut)
	}
	if in.PRF != nil {
		results.PRF = &PRFOutputs{Enabled: boolPtr(hmacOut)}
	}
	if in.HMACCreateSecret {
		results.HMACCreateSecret = boolPtr(hmacOut)
	}
	if in.LargeBlob != nil {
		results.LargeBlob = &LargeBlobOutputs{Supported: boolPtr(len(att.LargeBlobKey) > 0)}
	}
	if in.CredBlob != nil {
		stored := false
		if raw, ok := ad.extensions["credBlob"]; ok {
			_ = cbor.Unmarshal(raw, &stored)
		}
		results.CredBlob = boolPtr(stored)
	}

	transports := s.info.Transports
	if transports == nil {
		transports = []string{}
	}
	return &RegistrationResponse{
		ID:    base64.RawURLEncoding.EncodeToString(ad.credID),
		RawID: Bytes(ad.credID),
		Response: AuthenticatorAttestationResponse{
			ClientDataJSON:     cdJSON,
			AuthenticatorData:  authData,
			Transports:         transports,
			PublicKey:          spki,
			PublicKeyAlgorithm: alg,
			AttestationObject:  attObj,
		},
		AuthenticatorAttachment: "cross-platform",
		ClientExtensionResults:  results,
		Type:                    "public-key",
	}, nil
}

// supportsAlgorithm reports whether getInfo lists alg; a key that lists no
// algorithms (CTAP 2.0) is asked and answers for itself.
func (s *session) supportsAlgorithm(alg int64) bool {
	if len(s.info.Algorithms) == 0 {
		return true
	}
	for _, a := range s.info.Algorithms {
		if a.Type == "public-key" && a.Alg == alg {
			return true
		}
	}
	return false
}

// isAnonymousSelf reports packed self attestation with a zero AAGUID,
// which section 5.1.3 step 22.10 leaves as it is.
func isAnonymousSelf(format string, stmt cbor.RawMessage, ad *authData) bool {
	if format != "packed" {
		return false
	}
	var m map[string]cbor.RawMessage
	if cbor.Unmarshal(stmt, &m) != nil {
		return false
	}
	if _, ok := m["x5c"]; ok {
		return false
	}
	var zero [16]byte
	return string(ad.raw[ad.aaguidAt:ad.aaguidAt+16]) == string(zero[:])
}
