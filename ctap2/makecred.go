package ctap2

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
	"github.com/vkey-dev/vkey/keystore"
)

// maxCredBlobLength is the largest credBlob stored (CTAP 2.1 section 12.2
// requires at least 32).
const maxCredBlobLength = 32

// decodeParams decodes a command's CBOR parameter map into v. Absent
// parameters decode as an empty map, so the command reports the member that
// is missing.
func decodeParams(params []byte, v any) error {
	if len(params) == 0 {
		return nil
	}
	return Unmarshal(params, v)
}

// chooseAlgorithm walks pubKeyCredParams in the client's order of preference
// (CTAP 2.1 section 6.1.2 step 3).
func (a *Authenticator) chooseAlgorithm(params []CredentialParameter) (keystore.Algorithm, error) {
	if params == nil {
		return 0, ErrMissingParameter
	}
	var chosen keystore.Algorithm
	for _, p := range params {
		if p.invalid != nil {
			return 0, p.invalid
		}
		if chosen == 0 && p.Type == publicKeyType && a.supportsAlgorithm(keystore.Algorithm(p.Alg)) {
			chosen = keystore.Algorithm(p.Alg)
		}
	}
	if chosen == 0 {
		return 0, ErrUnsupportedAlgorithm
	}
	return chosen, nil
}

// supportsAlgorithm reports whether alg is one the key offers (getInfo's
// algorithms). Ed25519 (-19), the fully specified name of EdDSA on
// Ed25519, is accepted wherever EdDSA is.
func (a *Authenticator) supportsAlgorithm(alg keystore.Algorithm) bool {
	if alg == keystore.AlgEd25519 {
		alg = keystore.AlgEdDSA
	}
	return slices.Contains(a.opts.Algorithms, alg)
}

// providerFor picks the key provider of a new credential: syncable keys are
// software keys (they must be exportable); device-bound keys come from the
// device provider (the TPM) when it can make them.
func (a *Authenticator) providerFor(alg keystore.Algorithm, kind PasskeyKind) keystore.KeyProvider {
	if kind == DeviceBound && a.opts.DeviceKeys != nil && a.opts.DeviceKeys.Supports(alg) {
		return a.opts.DeviceKeys
	}
	return a.opts.SoftwareKeys
}

// providerNamed finds the provider that made a stored key.
func (a *Authenticator) providerNamed(name string) keystore.KeyProvider {
	if a.opts.DeviceKeys != nil && a.opts.DeviceKeys.Name() == name {
		return a.opts.DeviceKeys
	}
	if a.opts.SoftwareKeys.Name() == name {
		return a.opts.SoftwareKeys
	}
	return nil
}

// makeCredential is authenticatorMakeCredential (CTAP 2.1 section 6.1.2).
func (a *Authenticator) makeCredential(ctx context.Context, params []byte) (any, error) {
	var req MakeCredentialRequest
	if err := decodeParams(params, &req); err != nil {
		return nil, err
	}
	if req.ClientDataHash == nil || req.RP == nil || req.User == nil || req.PubKeyCredParams == nil {
		return nil, ErrMissingParameter
	}
	if req.RP.ID == "" || req.User.ID == nil {
		return nil, ErrMissingParameter
	}
	if len(req.User.ID) > 64 {
		return nil, ErrInvalidLength // WebAuthn section 5.4.3: user handle at most 64 bytes
	}
	if err := checkDescriptors(req.ExcludeList); err != nil {
		return nil, err
	}
	// Step 1: a zero-length pinUvAuthParam asks for a touch to pick a key.
	if req.PinUvAuthParam != nil && len(req.PinUvAuthParam) == 0 {
		return nil, a.touchProbe(ctx, "makeCredential", req.RP.ID)
	}
	// Step 2.
	if req.PinUvAuthParam != nil {
		if err := checkPinUvAuthProtocol(req.PinUvAuthProtocol); err != nil {
			return nil, err
		}
	}
	// Step 3.
	alg, err := a.chooseAlgorithm(req.PubKeyCredParams)
	if err != nil {
		return nil, err
	}
	// Steps 4-5: options.
	rk := req.Options["rk"]
	if up, ok := req.Options["up"]; ok && !up {
		return nil, ErrInvalidOption
	}
	// The uv option asks for built-in user verification (step 5); a key
	// without one answers CTAP2_ERR_INVALID_OPTION.
	builtinUV := req.Options["uv"] && req.PinUvAuthParam == nil
	if builtinUV && a.opts.UserVerifier == nil {
		return nil, ErrInvalidOption
	}
	ext := req.Extensions.only(a.advertisedExtensions())
	if ext.invalid != nil {
		return nil, ext.invalid
	}
	if ext.LargeBlobKey && !rk {
		return nil, ErrInvalidOption // CTAP 2.1 section 12.3
	}
	// Steps 6-11: user verification through the pinUvAuthToken, or the
	// built-in method.
	var uv bool
	if builtinUV {
		if err := a.builtInUV(ctx, PresenceRequest{Command: "makeCredential", RPID: req.RP.ID, UserName: req.User.Name}); err != nil {
			return nil, err
		}
		uv = true
	} else if uv, err = a.authorizeMakeCredential(&req, rk); err != nil {
		return nil, err
	}
	ep, err := a.enterpriseAttestation(req.EnterpriseAttestation, req.RP.ID)
	if err != nil {
		return nil, err
	}
	// hmac-secret-mc (CTAP 2.2 section 12.7) goes with hmac-secret: true;
	// alone it is ignored, as an extension the key does not process.
	var hmacMC *hmacSecretRequest
	if ext.HMACSecretMC != nil && ext.HMACSecret {
		if hmacMC, err = a.checkHMACSecretInput(ext.HMACSecretMC); err != nil {
			return nil, err
		}
	}
	rpIDHash := sha256Sum([]byte(req.RP.ID))
	// Step 12: excludeList.
	for _, d := range req.ExcludeList {
		c, err := a.findCredential(req.RP.ID, d)
		if err != nil || c == nil {
			continue
		}
		if c.CredProtect == credProtectRequired && !uv {
			continue // level 3 credentials are invisible without UV
		}
		if err := a.requestPresence(ctx, PresenceRequest{Command: "makeCredential", RPID: req.RP.ID, UserName: req.User.Name}); err != nil {
			return nil, err
		}
		return nil, ErrCredentialExcluded
	}
	// Step 14: user presence.
	if err := a.requestPresence(ctx, PresenceRequest{Command: "makeCredential", RPID: req.RP.ID, UserName: req.User.Name}); err != nil {
		return nil, err
	}
	a.consumeTokenPresence()

	kind := a.opts.Passkeys
	provider := a.providerFor(alg, kind)
	blob, key, err := generateKey(ctx, provider, alg)
	if err != nil {
		return nil, err
	}
	cred := &keystore.Credential{
		RPID: req.RP.ID, RPName: truncateUTF8(req.RP.Name, maxEntityStringBytes),
		UserID:          req.User.ID,
		UserName:        truncateUTF8(req.User.Name, maxEntityStringBytes),
		UserDisplayName: truncateUTF8(req.User.DisplayName, maxEntityStringBytes),
		Algorithm:       alg, Provider: provider.Name(), KeyBlob: blob,
		Discoverable: rk, CredProtect: ext.CredProtect,
		BackupEligible: kind == Syncable, ThirdPartyPayment: ext.ThirdPartyPayment,
		Created: a.opts.Now(),
	}
	outExt := map[string]any{}
	if ext.CredProtect != 0 {
		outExt["credProtect"] = ext.CredProtect
	}
	if ext.HMACSecret {
		cred.HMACSecret = true // sealCredentialID derives its CredRandom values
		outExt["hmac-secret"] = true
	}
	if ext.CredBlob != nil {
		stored := len(ext.CredBlob) <= maxCredBlobLength
		if stored {
			cred.CredBlob = ext.CredBlob
		}
		outExt["credBlob"] = stored
	}
	if ext.MinPINLength {
		if n, ok := a.minPINLengthFor(req.RP.ID); ok {
			outExt["minPinLength"] = uint64(n)
		}
	}
	var largeBlobKey []byte
	if ext.LargeBlobKey {
		largeBlobKey = randomBytes(32)
		cred.LargeBlobKey = largeBlobKey
	}
	if cred.ID, err = sealCredentialID(a.wrapKey, rpIDHash[:], cred); err != nil {
		return nil, err
	}
	if hmacMC != nil { // the CredRandom values exist now
		if outExt["hmac-secret-mc"], err = hmacMC.output(cred, uv); err != nil {
			return nil, err
		}
	}
	if cred.PublicKey, err = encodeCOSEKey(alg, key.Public()); err != nil {
		return nil, err
	}
	// Discoverable credentials live in the store; so do syncable ones, so
	// that `vkey backup export` finds them, and those whose key is too
	// long for their ID (a TPM's RSA key, keyInStore). A crash after this
	// write and before the answer leaves a stored credential no relying
	// party knows, as for a discoverable one: it is harmless, and reset
	// removes it.
	if rk || cred.BackupEligible || keyInStore(cred) {
		if rk {
			if err := a.checkProfileCapacity(cred); err != nil {
				return nil, err
			}
		}
		if err := a.putCredential(cred); err != nil {
			if errors.Is(err, keystore.ErrFull) {
				return nil, ErrKeyStoreFull
			}
			return nil, fmt.Errorf("storing credential: %w", err)
		}
	}
	count, err := a.store.NextSignCount(cred.ID)
	if err != nil {
		return nil, fmt.Errorf("signature counter: %w", err)
	}
	flags := flagUP | credentialFlags(cred)
	if uv {
		flags |= flagUV
	}
	var extBytes []byte
	if len(outExt) > 0 {
		if extBytes, err = Marshal(outExt); err != nil {
			return nil, fmt.Errorf("encoding extension outputs: %w", err)
		}
	}
	ad := authData(rpIDHash[:], flags, count, attestedCredentialData(a.opts.AAGUID, cred.ID, cred.PublicKey), extBytes)
	format, stmt, err := a.attestationStatement(key, cred, ad, req.ClientDataHash, ep, req.AttestationFormatsPreference)
	if err != nil {
		return nil, err
	}
	a.emit(CredentialCreated{RPID: req.RP.ID, RPIDHash: rpIDHash, CredentialID: cred.ID, UserName: req.User.Name,
		Discoverable: rk, SignCount: count, Extensions: ext.names(), ExtensionOutputs: outputNames(outExt, largeBlobKey != nil)})
	return makeCredentialResponse{Format: format, AuthData: ad, AttStmt: stmt, EPAtt: ep, LargeBlobKey: largeBlobKey}, nil
}

// generateKey is provider.Generate, which takes a TPM seconds for an RSA
// key: a client that cancels (CTAPHID_CANCEL) gets
// CTAP2_ERR_KEEPALIVE_CANCEL at once, and the key, made anyway, is dropped
// (TPM2_Create leaves nothing loaded in the TPM, and nothing is stored).
func generateKey(ctx context.Context, provider keystore.KeyProvider, alg keystore.Algorithm) ([]byte, keystore.Key, error) {
	if provider.Name() == keystore.SoftwareProviderName && alg != keystore.AlgRS256 && alg != keystore.AlgPS256 {
		// A software EC or Ed25519 key takes microseconds: handing it to
		// another goroutine cost more than making it (makeCredential's
		// bench ratio went from 1.14 to 1.6).
		blob, key, err := provider.Generate(alg)
		if err != nil {
			return nil, nil, fmt.Errorf("generating %d key with %s: %w", alg, provider.Name(), err)
		}
		return blob, key, nil
	}
	type generated struct {
		blob []byte
		key  keystore.Key
		err  error
	}
	done := make(chan generated, 1)
	go func() {
		blob, key, err := provider.Generate(alg)
		done <- generated{blob, key, err}
	}()
	select {
	case g := <-done:
		if g.err != nil {
			return nil, nil, fmt.Errorf("generating %d key with %s: %w", alg, provider.Name(), g.err)
		}
		return g.blob, g.key, nil
	case <-ctx.Done():
		return nil, nil, ErrKeepaliveCancel
	}
}

// maxEntityStringBytes is how much of rp.name, user.name and
// user.displayName is kept: CTAP 2.1 section 6.1.2 ("rp" and "user"
// parameters) lets an authenticator truncate them to 64 bytes, as hardware
// keys do.
const maxEntityStringBytes = 64

// truncateUTF8 cuts s to at most n bytes without splitting a UTF-8
// sequence (CTAP 2.1 section 6.1.2 requires the cut at a character
// boundary).
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 {
		r, size := utf8.DecodeLastRuneInString(s)
		if r != utf8.RuneError || size > 1 {
			break
		}
		s = s[:len(s)-1]
	}
	return s
}

// putCredential stores cred. A discoverable credential replaces the one of
// the same relying party and user handle (CTAP 2.1 section 6.1.2 step 17)
// in the same atomic write: a crash leaves the old or the new, never
// neither.
func (a *Authenticator) putCredential(cred *keystore.Credential) error {
	if !cred.Discoverable {
		return a.store.PutCredential(cred)
	}
	replaced, err := a.store.PutDiscoverable(cred)
	if err != nil {
		return err
	}
	for _, id := range replaced {
		a.emit(CredentialDeleted{RPID: cred.RPID, CredentialID: id})
	}
	return nil
}

// UnmarshalCBOR decodes a PublicKeyCredentialDescriptor, remembering
// whether its type or id member was missing: a request's allowList or
// excludeList holding such a descriptor is CTAP2_ERR_MISSING_PARAMETER
// (CTAP 2.1 section 6.1.2 step 3 and section 6.2.2 step 3, the
// descriptors' required members), while one of an unknown type is skipped.
func (d *CredentialDescriptor) UnmarshalCBOR(data []byte) error {
	var m map[string]cbor.RawMessage
	if err := defaultCodec.dec.Unmarshal(data, &m); err != nil {
		return err
	}
	var w struct {
		Type       string   `cbor:"type"`
		ID         []byte   `cbor:"id"`
		Transports []string `cbor:"transports,omitempty"`
	}
	if err := defaultCodec.dec.Unmarshal(data, &w); err != nil {
		return err
	}
	_, hasType := m["type"]
	_, hasID := m["id"]
	*d = CredentialDescriptor{Type: w.Type, ID: w.ID, Transports: w.Transports, incomplete: !hasType || !hasID}
	return nil
}

// checkDescriptors rejects a list with a descriptor missing type or id.
func checkDescriptors(list []CredentialDescriptor) error {
	for _, d := range list {
		if d.incomplete {
			return ErrMissingParameter
		}
	}
	return nil
}

// findCredential resolves a credential descriptor for rpID: a stored
// credential with that ID, or a credential sealed in the ID itself. It
// returns nil when the credential is not ours or not for this RP.
func (a *Authenticator) findCredential(rpID string, d CredentialDescriptor) (*keystore.Credential, error) {
	if d.Type != publicKeyType || len(d.ID) == 0 {
		return nil, nil
	}
	c, err := a.store.Credential(d.ID)
	switch {
	case err == nil && c.RPID == "":
		// A U2F credential the store keeps (a TPM key made by
		// U2F_REGISTER, storeU2FCredential) knows its RP only by the
		// application ID's hash, which its ID binds: it is the credential
		// of the RP ID that hashes to it, as a U2F key handle sealing its
		// key is (the FIDO AppID extension sends the application ID as
		// rpId, WebAuthn section 10.1.1).
		if _, err := openCredentialID(a.wrapKey, rpID, d.ID); err != nil {
			return nil, nil
		}
		c.RPID = rpID
		return c, nil
	case err == nil:
		if c.RPID != rpID {
			return nil, nil
		}
		return c, nil
	case errors.Is(err, keystore.ErrDeleted):
		// A deleted credential is gone for every path, though its ID
		// still carries its key (issue 11 point 6).
		return nil, nil
	case !errors.Is(err, keystore.ErrNotFound):
		return nil, fmt.Errorf("reading credential: %w", err)
	}
	c, err = openCredentialID(a.wrapKey, rpID, d.ID)
	if err != nil || c.Discoverable || c.KeyBlob == nil {
		// A discoverable credential that is no longer stored was deleted;
		// so was one whose ID left its key to the store (keyInStore).
		return nil, nil
	}
	return c, nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error()) // crypto/rand.Read never fails on Linux
	}
	return b
}
