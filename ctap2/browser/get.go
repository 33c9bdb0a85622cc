package browser

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"

	"github.com/fxamacker/cbor/v2"
	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/ctap2/client"
)

// Get is navigator.credentials.get() for options (the RP's
// PublicKeyCredentialRequestOptionsJSON, bare or as {"publicKey": …})
// called from a page of origin (WebAuthn L3 section 5.1.4).
func (c *Client) Get(ctx context.Context, options []byte, origin string) (*AuthenticationResponse, error) {
	return c.GetInFrame(ctx, options, origin, "")
}

// GetInFrame is Get from a frame of origin embedded in a page of topOrigin.
func (c *Client) GetInFrame(ctx context.Context, options []byte, origin, topOrigin string) (*AuthenticationResponse, error) {
	o, err := ParseRequestOptions(options)
	if err != nil {
		return nil, err
	}
	return c.GetWithOptions(ctx, o, origin, topOrigin)
}

// prfSalt is the hmac-secret salt of a PRF input: SHA-256("WebAuthn PRF"
// || 0x00 || input) (WebAuthn L3 section 10.1.4).
func prfSalt(input []byte) []byte {
	h := sha256.New()
	h.Write([]byte("WebAuthn PRF\x00"))
	h.Write(input)
	return h.Sum(nil)
}

// GetWithOptions is Get for parsed options.
func (c *Client) GetWithOptions(ctx context.Context, o *RequestOptions, origin, topOrigin string) (*AuthenticationResponse, error) {
	cctx, cancel := c.withTimeout(ctx, o.Timeout)
	defer cancel()
	resp, err := c.get(cctx, o, origin, topOrigin)
	if err != nil && c.retryable(cctx, err) {
		resp, err = c.get(cctx, o, origin, topOrigin)
	}
	if err != nil {
		return nil, ceremonyError(ctx, cctx, err)
	}
	return resp, nil
}

func (c *Client) get(ctx context.Context, o *RequestOptions, origin, topOrigin string) (*AuthenticationResponse, error) {
	s, caller, err := c.start(ctx, origin, o.RPID)
	if err != nil {
		return nil, err
	}
	allow := s.usableDescriptors(o.AllowCredentials)
	if len(o.AllowCredentials) > 0 && len(allow) == 0 {
		return nil, domError(NotAllowedError, nil, "the authenticator can hold none of allowCredentials")
	}
	in := o.Extensions

	// Extension inputs a browser rejects before it asks the key.
	if prf := in.PRF; prf != nil && len(prf.EvalByCredential) > 0 {
		// Section 10.1.4, authentication, steps 1-2.
		if len(o.AllowCredentials) == 0 {
			return nil, domError(NotSupportedError, nil, "prf.evalByCredential needs allowCredentials")
		}
		for k := range prf.EvalByCredential {
			id, err := base64.RawURLEncoding.DecodeString(k)
			if err != nil || !listed(allow, id) {
				return nil, domError(SyntaxError, err, "prf.evalByCredential names %q, which is not a credential of allowCredentials", k)
			}
		}
	}
	if lb := in.LargeBlob; lb != nil {
		// Section 10.1.5, authentication.
		switch {
		case lb.Support != "":
			return nil, domError(NotSupportedError, nil, "largeBlob.support belongs to create(), not get()")
		case lb.Read && lb.Write != nil:
			return nil, domError(NotSupportedError, nil, "largeBlob read and write cannot both be asked")
		case lb.Write != nil && len(allow) != 1:
			return nil, domError(NotSupportedError, nil, "largeBlob.write needs allowCredentials to name exactly one credential")
		}
	}

	perms := ctap2.PermGetAssertion
	if in.LargeBlob != nil && in.LargeBlob.Write != nil {
		perms |= ctap2.PermLargeBlobWrite
	}
	if err := s.verifyUser(ctx, o.UserVerification, perms); err != nil {
		return nil, err
	}

	// An allowCredentials longer than one request carries, or one whose
	// credentials have their own PRF inputs: a silent pre-flight picks the
	// credential the key holds, as Chromium does.
	needOne := s.tooLong(allow) || (in.PRF != nil && len(in.PRF.EvalByCredential) > 0 && len(allow) > 1)
	if needOne {
		found, err := s.preflight(ctx, allow)
		if err != nil {
			return nil, err
		}
		if found == nil {
			return nil, domError(NotAllowedError, ctap2.ErrNoCredentials, "the authenticator holds none of allowCredentials")
		}
		allow = []ctap2.CredentialDescriptor{*found}
	}
	if err := s.renewToken(ctx); err != nil {
		return nil, err
	}

	cdJSON, cdHash, err := clientData("webauthn.get", o.Challenge, caller, topOrigin)
	if err != nil {
		return nil, err
	}

	var ext ctap2.GetAssertionExtensions
	var hmac *client.HMACSecret
	var salts [][]byte
	switch {
	case in.PRF != nil:
		var v *PRFValues
		if len(allow) == 1 {
			if e, ok := in.PRF.EvalByCredential[base64.RawURLEncoding.EncodeToString(allow[0].ID)]; ok {
				v = &e
			}
		}
		if v == nil {
			v = in.PRF.Eval
		}
		if v != nil {
			salts = append(salts, prfSalt(v.First))
			if v.Second != nil {
				salts = append(salts, prfSalt(v.Second))
			}
		}
	case in.HMACGetSecret != nil:
		if len(in.HMACGetSecret.Salt1) != 32 || (in.HMACGetSecret.Salt2 != nil && len(in.HMACGetSecret.Salt2) != 32) {
			return nil, domError(NotSupportedError, nil, "hmacGetSecret salts are 32 bytes each")
		}
		salts = append(salts, in.HMACGetSecret.Salt1)
		if in.HMACGetSecret.Salt2 != nil {
			salts = append(salts, in.HMACGetSecret.Salt2)
		}
	}
	if len(salts) > 0 && s.supportsExtension("hmac-secret") {
		hmac, err = c.ctap.NewHMACSecret(ctx, s.pinUVProtocol(), salts...)
		if err != nil {
			return nil, ctapError("the hmac-secret key agreement", err)
		}
		ext.HMACSecret = hmac.Input
	}
	ext.CredBlob = in.GetCredBlob && s.supportsExtension("credBlob")
	ext.LargeBlobKey = in.LargeBlob != nil && (in.LargeBlob.Read || in.LargeBlob.Write != nil) && s.option("largeBlobs")

	req := &ctap2.GetAssertionRequest{RPID: s.rpID, ClientDataHash: cdHash, AllowList: allow}
	req.Extensions = ext
	req.PinUvAuthParam, req.PinUvAuthProtocol, req.Options = s.uvParams(cdHash, nil)
	resp, err := c.ctap.GetAssertion(ctx, req)
	if err != nil {
		return nil, ctapError("the sign-in", err)
	}
	if len(allow) == 0 && resp.NumberOfCredentials > 1 {
		if resp, err = c.chooseAccount(ctx, resp); err != nil {
			return nil, err
		}
	}
	credID := resp.Credential.ID
	if len(credID) == 0 && len(allow) == 1 {
		// CTAP 2.1 section 6.2.2: the key may omit the credential when the
		// allowList had one entry.
		credID = allow[0].ID
	}
	ad, err := parseAuthData(resp.AuthData)
	if err != nil {
		return nil, errorf("getAssertion authenticator data: %v", err)
	}

	results := ClientExtensionResults{}
	if hmac != nil {
		var enc []byte
		if raw, ok := ad.extensions["hmac-secret"]; ok {
			_ = cbor.Unmarshal(raw, &enc)
		}
		if enc != nil {
			out, err := hmac.Output(enc)
			if err != nil || (len(out) != 32 && len(out) != 64) {
				return nil, errorf("hmac-secret output: %v", err)
			}
			first, second := Bytes(out[:32]), Bytes(nil)
			if len(out) == 64 {
				second = Bytes(out[32:])
			}
			if in.PRF != nil {
				results.PRF = &PRFOutputs{Results: &PRFValues{First: first, Second: second}}
			} else {
				results.HMACGetSecret = &HMACGetSecretOutput{Output1: first, Output2: second}
			}
		}
	}
	if in.PRF != nil && results.PRF == nil {
		results.PRF = &PRFOutputs{}
	}
	if in.GetCredBlob {
		var blob []byte
		if raw, ok := ad.extensions["credBlob"]; ok {
			_ = cbor.Unmarshal(raw, &blob)
		}
		b := Bytes(blob)
		results.GetCredBlob = &b
	}
	if lb := in.LargeBlob; lb != nil && (lb.Read || lb.Write != nil) {
		results.LargeBlob = &LargeBlobOutputs{}
		switch {
		case len(resp.LargeBlobKey) == 0:
			if lb.Write != nil {
				results.LargeBlob.Written = boolPtr(false)
			}
		case lb.Read:
			blob, err := c.ctap.LargeBlob(ctx, resp.LargeBlobKey)
			if err != nil && !errors.Is(err, client.ErrNoLargeBlob) {
				return nil, ctapError("reading the large blob", err)
			}
			results.LargeBlob.Blob = blob
		default:
			err := c.ctap.PutLargeBlob(ctx, s.token, resp.LargeBlobKey, lb.Write)
			results.LargeBlob.Written = boolPtr(err == nil)
		}
	}

	var userHandle Bytes
	if resp.User != nil {
		userHandle = resp.User.ID
	}
	return &AuthenticationResponse{
		ID:    base64.RawURLEncoding.EncodeToString(credID),
		RawID: credID,
		Response: AuthenticatorAssertionResponse{
			ClientDataJSON:    cdJSON,
			AuthenticatorData: resp.AuthData,
			Signature:         resp.Signature,
			UserHandle:        userHandle,
		},
		AuthenticatorAttachment: "cross-platform",
		ClientExtensionResults:  results,
		Type:                    "public-key",
	}, nil
}

// chooseAccount reads the other discoverable credentials by
// getNextAssertion and lets Options.SelectAccount pick one, as a
// browser's account chooser (section 5.1.4.2 step 20, CTAP 2.1 section
// 6.3).
func (c *Client) chooseAccount(ctx context.Context, first *ctap2.GetAssertionResponse) (*ctap2.GetAssertionResponse, error) {
	if c.opts.SelectAccount == nil {
		return first, nil
	}
	all := []*ctap2.GetAssertionResponse{first}
	for i := 1; i < first.NumberOfCredentials; i++ {
		next, err := c.ctap.GetNextAssertion(ctx)
		if err != nil {
			return nil, ctapError("reading the accounts", err)
		}
		all = append(all, next)
	}
	users := make([]User, len(all))
	for i, r := range all {
		users[i].CredentialID = r.Credential.ID
		if r.User != nil {
			users[i].UserID, users[i].Name, users[i].DisplayName = r.User.ID, r.User.Name, r.User.DisplayName
		}
	}
	i := c.opts.SelectAccount(users)
	if i < 0 || i >= len(all) {
		return nil, domError(NotAllowedError, nil, "the user chose no account")
	}
	return all[i], nil
}

// listed reports whether id is one of list.
func listed(list []ctap2.CredentialDescriptor, id []byte) bool {
	for _, d := range list {
		if string(d.ID) == string(id) {
			return true
		}
	}
	return false
}
