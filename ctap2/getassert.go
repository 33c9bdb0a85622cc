package ctap2

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/vkey-dev/vkey/keystore"
)

// nextAssertionTimeout is how long getNextAssertion may follow
// getAssertion (CTAP 2.1 section 6.3: 30 seconds).
const nextAssertionTimeout = 30 * time.Second

// nextAssertionState is kept between getAssertion and getNextAssertion.
type nextAssertionState struct {
	rpID           string
	clientDataHash []byte
	remaining      []*keystore.Credential
	up, uv         bool
	ext            getAssertionExtensions
	started        time.Time
}

// getAssertionExtensions is what getAssertion understood of the extensions.
type getAssertionExtensions struct {
	hmacProto    PINProtocol
	hmacShared   []byte
	hmacSalts    []byte // salt1 || optional salt2, decrypted
	credBlob     bool
	largeBlobKey bool
	// payment asks whether the credential is for third-party payment
	// (CTAP 2.2 section 12.9).
	payment bool
	// names are the extensions of the request the key read, for the
	// Observer.
	names []string
}

// checkGetAssertionExtensions checks the extension inputs of a request
// (CTAP 2.1 section 12), those the key advertises, and prepares the
// hmac-secret output.
func (a *Authenticator) checkGetAssertionExtensions(in *GetAssertionExtensions) (getAssertionExtensions, error) {
	e := getAssertionExtensions{credBlob: in.CredBlob, largeBlobKey: in.LargeBlobKey, payment: in.ThirdPartyPayment, names: in.names()}
	// Inputs are checked in the order of the request (see
	// extensionDecoder).
	if in.invalid != nil && !in.hmacSecretFirst {
		return e, in.invalid
	}
	if in.HMACSecret != nil {
		r, err := a.checkHMACSecretInput(in.HMACSecret)
		if err != nil {
			return e, err
		}
		e.hmacProto, e.hmacShared, e.hmacSalts = r.proto, r.shared, r.salts
	}
	return e, in.invalid
}

// getAssertion is authenticatorGetAssertion (CTAP 2.1 section 6.2.2).
func (a *Authenticator) getAssertion(ctx context.Context, params []byte) (any, error) {
	a.volatile.next = nil
	var req GetAssertionRequest
	if err := decodeParams(params, &req); err != nil {
		return nil, err
	}
	if req.RPID == "" || req.ClientDataHash == nil {
		return nil, ErrMissingParameter
	}
	if err := checkDescriptors(req.AllowList); err != nil {
		return nil, err
	}
	// Step 1: a zero-length pinUvAuthParam asks for a touch to pick a key.
	if req.PinUvAuthParam != nil && len(req.PinUvAuthParam) == 0 {
		return nil, a.touchProbe(ctx, "getAssertion", req.RPID)
	}
	if req.PinUvAuthParam != nil {
		if err := checkPinUvAuthProtocol(req.PinUvAuthProtocol); err != nil {
			return nil, err
		}
	}
	// Steps 3-5: options.
	if _, ok := req.Options["rk"]; ok {
		return nil, ErrUnsupportedOption
	}
	up := true
	if v, ok := req.Options["up"]; ok {
		up = v
	}
	builtinUV := req.Options["uv"] && req.PinUvAuthParam == nil
	if builtinUV && a.opts.UserVerifier == nil {
		return nil, ErrInvalidOption // no built-in user verification method
	}
	// Step 6: user verification through the pinUvAuthToken, or built in.
	uv := false
	if builtinUV {
		if err := a.builtInUV(ctx, PresenceRequest{Command: "getAssertion", RPID: req.RPID}); err != nil {
			return nil, err
		}
		uv = true
	} else if req.PinUvAuthParam != nil {
		if err := a.verifyToken(req.PinUvAuthProtocol, req.PinUvAuthParam, req.ClientDataHash, PermGetAssertion, req.RPID); err != nil {
			return nil, err
		}
		uv = true
	} else if up {
		// alwaysUv (section 6.11.2); a silent (up=false) pre-flight is allowed.
		if err := a.requireUV(false); err != nil {
			return nil, err
		}
	}
	ext, err := a.checkGetAssertionExtensions(req.Extensions.only(a.advertisedExtensions()))
	if err != nil {
		return nil, err
	}
	// Step 7: locate the applicable credentials.
	creds, err := a.applicableCredentials(req.RPID, req.AllowList, uv)
	if err != nil {
		return nil, err
	}
	if len(creds) == 0 {
		if up {
			// Hardware keys take a touch before they answer that they
			// hold none of the credentials, and platforms rely on it:
			// with several keys plugged in, Chromium reads this answer as
			// the user having touched a key that is not registered and
			// stops asking the others. So a key without the credential
			// waits for its touch (or to be cancelled when another key
			// answers) instead of ending the ceremony for all of them. A
			// silent (up=false) pre-flight is answered at once.
			if err := a.requestPresence(ctx, PresenceRequest{Command: "getAssertion", RPID: req.RPID}); err != nil {
				return nil, err
			}
		}
		return nil, ErrNoCredentials
	}
	// Step 9: user presence.
	if up {
		if err := a.requestPresence(ctx, PresenceRequest{Command: "getAssertion", RPID: req.RPID}); err != nil {
			return nil, err
		}
		if uv {
			a.consumeTokenPresence()
		}
	}
	// Step 12: with no allowList, the discoverable credentials after the
	// first are handed out by getNextAssertion, newest first. An empty
	// allowList is no allowList (step 7: "present and non-empty").
	several := len(req.AllowList) == 0 && len(creds) > 1
	resp, err := a.assert(creds[0], req.RPID, req.ClientDataHash, up, uv, several, &ext)
	if err != nil {
		return nil, err
	}
	if several {
		resp.NumberOfCredentials = len(creds)
		a.volatile.next = &nextAssertionState{
			rpID: req.RPID, clientDataHash: req.ClientDataHash, remaining: creds[1:],
			up: up, uv: uv, ext: ext, started: a.opts.Now(),
		}
	}
	return resp, nil
}

// applicableCredentials is step 7 of getAssertion: the allowList entries
// that are ours, or, when the allowList is absent or empty, the
// discoverable credentials of rpID newest first, minus those credProtect
// hides without user verification.
func (a *Authenticator) applicableCredentials(rpID string, allowList []CredentialDescriptor, uv bool) ([]*keystore.Credential, error) {
	var creds []*keystore.Credential
	if len(allowList) > 0 {
		for _, d := range allowList {
			c, err := a.findCredential(rpID, d)
			if err != nil {
				return nil, err
			}
			if c != nil && (uv || c.CredProtect != credProtectRequired) && a.usable(c) {
				creds = append(creds, c)
			}
		}
		return creds, nil
	}
	rpIDHash := sha256Sum([]byte(rpID))
	all, err := a.store.DiscoverableCredentials(rpIDHash[:])
	if err != nil {
		return nil, fmt.Errorf("listing credentials: %w", err)
	}
	for _, c := range all {
		if !c.Discoverable || c.RPID != rpID {
			continue
		}
		// credProtect levels 2 and 3 hide a credential from discovery
		// without user verification (CTAP 2.1 section 12.1).
		if !uv && c.CredProtect >= credProtectOptionalWithList {
			continue
		}
		if a.usable(c) {
			creds = append(creds, c)
		}
	}
	sort.SliceStable(creds, func(i, j int) bool { return creds[i].Created.After(creds[j].Created) })
	return creds, nil
}

// usable reports whether this authenticator can load c's key: a key made by
// another TPM, or by a provider not available now, belongs to a credential
// this authenticator does not have (CTAP 2.1 section 6.2.2 step 7).
func (a *Authenticator) usable(c *keystore.Credential) bool {
	if _, err := a.loadKey(c); err != nil {
		a.opts.Logger.Warn("credential key unusable", "rp", c.RPID, "err", err)
		return false
	}
	return true
}

// keyCacheSize bounds the loaded keys kept between assertions: parsing a
// key (for P-256, recomputing its public point) costs as much as half a
// signature, and a credential is usually used again soon.
const keyCacheSize = 64

// loadKey returns the usable key of a credential, from the cache when it
// was loaded recently. The cache is keyed by credential ID, which names
// its key material for good (the ID seals it, or the store keeps it).
func (a *Authenticator) loadKey(c *keystore.Credential) (keystore.Key, error) {
	cacheKey := c.Provider + "\x00" + string(c.ID)
	if key, ok := a.keyCache[cacheKey]; ok {
		return key, nil
	}
	p := a.providerNamed(c.Provider)
	if p == nil {
		return nil, fmt.Errorf("credential key provider %q is not available", c.Provider)
	}
	key, err := p.Load(c.Algorithm, c.KeyBlob)
	if err != nil {
		return nil, fmt.Errorf("loading credential key: %w", err)
	}
	if a.keyCache == nil || len(a.keyCache) >= keyCacheSize {
		a.keyCache = make(map[string]keystore.Key, keyCacheSize)
	}
	a.keyCache[cacheKey] = key
	return key, nil
}

// assert signs one assertion with c (CTAP 2.1 section 6.2.2 steps 10-13).
// several says that c is one of several accounts the platform must choose
// from.
func (a *Authenticator) assert(c *keystore.Credential, rpID string, clientDataHash []byte, up, uv, several bool, ext *getAssertionExtensions) (*GetAssertionResponse, error) {
	key, err := a.loadKey(c)
	if err != nil {
		// A key this authenticator cannot load (another TPM's, or a provider
		// that is not available now) is a credential it does not have.
		a.opts.Logger.Warn("credential key unusable", "rp", rpID, "err", err)
		return nil, ErrNoCredentials
	}
	outExt := map[string]any{}
	if ext.hmacSalts != nil && c.HMACSecret {
		enc, err := (&hmacSecretRequest{proto: ext.hmacProto, shared: ext.hmacShared, salts: ext.hmacSalts}).output(c, uv)
		if err != nil {
			return nil, err
		}
		outExt["hmac-secret"] = enc
	}
	if ext.payment {
		outExt["thirdPartyPayment"] = c.ThirdPartyPayment
	}
	if ext.credBlob {
		outExt["credBlob"] = append([]byte{}, c.CredBlob...)
	}
	var extBytes []byte
	if len(outExt) > 0 {
		if extBytes, err = Marshal(outExt); err != nil {
			return nil, fmt.Errorf("encoding extension outputs: %w", err)
		}
	}
	count, err := a.store.NextSignCount(c.ID)
	if err != nil {
		return nil, fmt.Errorf("signature counter: %w", err)
	}
	flags := credentialFlags(c)
	if up {
		flags |= flagUP
	}
	if uv {
		flags |= flagUV
	}
	rpIDHash := sha256Sum([]byte(rpID))
	ad := authData(rpIDHash[:], flags, count, nil, extBytes)
	sig, err := key.Sign(append(append(make([]byte, 0, len(ad)+len(clientDataHash)), ad...), clientDataHash...))
	if err != nil {
		return nil, fmt.Errorf("signing assertion: %w", err)
	}
	resp := &GetAssertionResponse{
		Credential: CredentialDescriptor{Type: publicKeyType, ID: c.ID},
		AuthData:   ad,
		Signature:  sig,
	}
	if c.Discoverable && len(c.UserID) > 0 {
		// CTAP 2.1 section 6.2.2, the user member: for a single account
		// only its id; name and displayName only when the platform must
		// choose among several accounts, and only after user verification.
		// A credential registered with an empty user ID has no user member
		// at all: an id must be a byte string, never null, and an empty
		// one identifies nobody (what conformance tooling expects).
		resp.User = &UserEntity{ID: c.UserID}
		if uv && several {
			resp.User.Name, resp.User.DisplayName = c.UserName, c.UserDisplayName
		}
	}
	if ext.largeBlobKey && c.LargeBlobKey != nil {
		resp.LargeBlobKey = c.LargeBlobKey
	}
	a.emit(CredentialAsserted{RPID: rpID, RPIDHash: rpIDHash, CredentialID: c.ID, SignCount: count, UserPresent: up, UserVerified: uv,
		Extensions: ext.names, ExtensionOutputs: outputNames(outExt, resp.LargeBlobKey != nil)})
	return resp, nil
}

// getNextAssertion is authenticatorGetNextAssertion (CTAP 2.1 section 6.3).
func (a *Authenticator) getNextAssertion(ctx context.Context, params []byte) (any, error) {
	st := a.volatile.next
	if st == nil || len(st.remaining) == 0 {
		a.volatile.next = nil
		return nil, ErrNotAllowed
	}
	if a.opts.Now().Sub(st.started) > nextAssertionTimeout {
		a.volatile.next = nil
		return nil, ErrNotAllowed
	}
	c := st.remaining[0]
	st.remaining = st.remaining[1:]
	// The credential may have been deleted meanwhile through another channel.
	if _, err := a.store.Credential(c.ID); errors.Is(err, keystore.ErrNotFound) {
		return nil, ErrNoCredentials
	}
	resp, err := a.assert(c, st.rpID, st.clientDataHash, st.up, st.uv, true, &st.ext)
	if err != nil {
		return nil, err
	}
	return resp, nil
}
