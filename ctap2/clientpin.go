package ctap2

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/vkey-dev/vkey/keystore"
)

// authenticatorClientPIN subcommands (CTAP 2.1 section 6.5.5).
const (
	ClientPINGetPINRetries    = 0x01 // getPINRetries
	ClientPINGetKeyAgreement  = 0x02 // getKeyAgreement
	ClientPINSetPIN           = 0x03 // setPIN
	ClientPINChangePIN        = 0x04 // changePIN
	ClientPINGetPINToken      = 0x05 // getPinToken (CTAP 2.0)
	ClientPINGetTokenUsingUV  = 0x06 // getPinUvAuthTokenUsingUvWithPermissions
	ClientPINGetUVRetries     = 0x07 // getUVRetries
	ClientPINGetTokenUsingPIN = 0x09 // getPinUvAuthTokenUsingPinWithPermissions
)

const (
	defaultMinPINLength               = 4
	maxPINBytes                       = 63
	maxConsecutivePINMismatches       = 3
	pinUvAuthTokenMaxUsage            = 10 * time.Minute // CTAP 2.1 section 6.5.2.1, maximum usage period
	credProtectRequired         uint8 = 3
	credProtectOptionalWithList uint8 = 2
)

// Permission is a pinUvAuthToken permission bit (CTAP 2.1 section 6.5.5.7).
type Permission uint64

// pinUvAuthToken permissions.
const (
	PermMakeCredential   Permission = 0x01 // mc
	PermGetAssertion     Permission = 0x02 // ga
	PermCredentialMgmt   Permission = 0x04 // cm
	PermBioEnrollment    Permission = 0x08 // be
	PermLargeBlobWrite   Permission = 0x10 // lbw
	PermAuthenticatorCfg Permission = 0x20 // acfg
)

// pinVolatile is the clientPIN state a power cycle resets.
type pinVolatile struct {
	keyAgreement *ecdh.PrivateKey
	mismatches   int // consecutive PIN mismatches this power cycle
	token        pinToken
}

// pinToken is the pinUvAuthToken and its state (CTAP 2.1 section 6.5.2.1).
type pinToken struct {
	value       []byte
	inUse       bool
	issued      time.Time
	permissions Permission
	rpID        string // empty: not yet bound
	userPresent bool
	// legacy marks a token from getPinToken (0x05), which pre-2.1
	// platforms use for the preview credential management command.
	legacy bool
}

func (a *Authenticator) initPINVolatileLocked() {
	a.volatile.pin = pinVolatile{}
	a.regenerateKeyAgreement()
}

// regenerateKeyAgreement makes a new key agreement key (CTAP 2.1 section
// 6.5.6, regenerate()).
func (a *Authenticator) regenerateKeyAgreement() {
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	a.volatile.pin.keyAgreement = k
}

// resetToken invalidates the pinUvAuthToken (resetPinUvAuthToken()).
func (a *Authenticator) resetToken() { a.volatile.pin.token = pinToken{} }

// tokenUsable reports whether the token is in use and within its lifetime.
func (a *Authenticator) tokenUsable() bool {
	t := &a.volatile.pin.token
	if t.inUse && a.opts.Now().Sub(t.issued) > pinUvAuthTokenMaxUsage {
		a.resetToken()
	}
	return t.inUse
}

type clientPINRequest struct {
	Protocol       *uint64           `cbor:"1,keyasint,omitempty"`
	SubCommand     *uint64           `cbor:"2,keyasint,omitempty"`
	KeyAgreement   *COSEKeyAgreement `cbor:"3,keyasint,omitempty"`
	PinUvAuthParam []byte            `cbor:"4,keyasint,omitempty"`
	NewPinEnc      []byte            `cbor:"5,keyasint,omitempty"`
	PinHashEnc     []byte            `cbor:"6,keyasint,omitempty"`
	Permissions    *uint64           `cbor:"9,keyasint,omitempty"`
	RPID           *string           `cbor:"10,keyasint,omitempty"`
}

type clientPINResponse struct {
	KeyAgreement    *COSEKeyAgreement `cbor:"1,keyasint,omitempty"`
	PinUvAuthToken  []byte            `cbor:"2,keyasint,omitempty"`
	PINRetries      *int              `cbor:"3,keyasint,omitempty"`
	PowerCycleState *bool             `cbor:"4,keyasint,omitempty"`
	UVRetries       *int              `cbor:"5,keyasint,omitempty"`
}

// clientPIN is authenticatorClientPIN (CTAP 2.1 section 6.5).
func (a *Authenticator) clientPIN(ctx context.Context, params []byte) (any, error) {
	var req clientPINRequest
	if err := decodeParams(params, &req); err != nil {
		return nil, err
	}
	if req.SubCommand == nil {
		return nil, ErrMissingParameter
	}
	sub := *req.SubCommand
	if sub == ClientPINGetPINRetries {
		st, err := a.store.PINState()
		if err != nil {
			return nil, fmt.Errorf("reading PIN state: %w", err)
		}
		blocked := a.volatile.pin.mismatches >= maxConsecutivePINMismatches
		return clientPINResponse{PINRetries: &st.Retries, PowerCycleState: &blocked}, nil
	}
	if sub == ClientPINGetTokenUsingUV || sub == ClientPINGetUVRetries {
		if a.opts.UserVerifier == nil {
			return nil, ErrInvalidSubcommand // no built-in user verification
		}
		if sub == ClientPINGetUVRetries {
			n := a.uvRetries()
			return clientPINResponse{UVRetries: &n}, nil
		}
	}
	if sub != ClientPINGetKeyAgreement && sub != ClientPINSetPIN && sub != ClientPINChangePIN && sub != ClientPINGetPINToken && sub != ClientPINGetTokenUsingPIN && sub != ClientPINGetTokenUsingUV {
		return nil, ErrInvalidSubcommand
	}
	if !a.profileHasPINSubcommand(sub) {
		return nil, ErrInvalidSubcommand
	}
	if req.Protocol == nil {
		return nil, ErrMissingParameter
	}
	proto, ok := a.pinProtocol(*req.Protocol)
	if !ok {
		return nil, ErrInvalidParameter
	}
	switch sub {
	case ClientPINGetKeyAgreement:
		k := EncodeKeyAgreement(a.volatile.pin.keyAgreement.PublicKey())
		return clientPINResponse{KeyAgreement: &k}, nil
	case ClientPINSetPIN:
		return nil, a.setPIN(proto, &req)
	case ClientPINChangePIN:
		return nil, a.changePIN(proto, &req)
	case ClientPINGetTokenUsingUV:
		return a.getTokenUsingUV(ctx, proto, &req)
	default:
		return a.getPINToken(proto, &req, sub)
	}
}

// pinSet reports whether a PIN has been set.
func (a *Authenticator) pinSet() (bool, error) {
	st, err := a.store.PINState()
	if err != nil {
		return false, fmt.Errorf("reading PIN state: %w", err)
	}
	return st.Hash != nil, nil
}

func (a *Authenticator) minPINLength() int {
	cfg, err := a.store.Config()
	if err != nil || cfg.MinPINLength == 0 {
		return defaultMinPINLength
	}
	return cfg.MinPINLength
}

// decryptNewPIN checks newPinEnc and returns the new PIN (CTAP 2.1 section
// 6.5.5.5 steps 5-7): 64 bytes of padded PIN, at least minPINLength code
// points, at most 63 bytes.
func (a *Authenticator) decryptNewPIN(proto PINProtocol, shared, newPinEnc []byte) ([]byte, error) {
	padded, err := proto.Decrypt(shared, newPinEnc)
	if err != nil || len(padded) != 64 {
		return nil, ErrInvalidParameter
	}
	pin := padded
	if i := bytes.IndexByte(padded, 0); i >= 0 {
		pin = padded[:i]
	}
	if len(pin) > maxPINBytes || !utf8.Valid(pin) || utf8.RuneCount(pin) < a.minPINLength() {
		return nil, ErrPINPolicyViolation
	}
	return pin, nil
}

func pinHash(pin []byte) []byte {
	h := sha256.Sum256(pin)
	return h[:16]
}

// setPIN is clientPIN setPIN (CTAP 2.1 section 6.5.5.5).
func (a *Authenticator) setPIN(proto PINProtocol, req *clientPINRequest) error {
	if req.KeyAgreement == nil || req.PinUvAuthParam == nil || req.NewPinEnc == nil {
		return ErrMissingParameter
	}
	st, err := a.store.PINState()
	if err != nil {
		return fmt.Errorf("reading PIN state: %w", err)
	}
	if st.Hash != nil {
		return ErrNotAllowed
	}
	shared, err := SharedSecret(proto, a.volatile.pin.keyAgreement, req.KeyAgreement)
	if err != nil {
		return err
	}
	if !proto.Verify(shared, req.NewPinEnc, req.PinUvAuthParam) {
		return ErrPINAuthInvalid
	}
	pin, err := a.decryptNewPIN(proto, shared, req.NewPinEnc)
	if err != nil {
		return err
	}
	st = keystore.PINState{Hash: pinHash(pin), CodePoints: utf8.RuneCount(pin), Retries: keystore.DefaultPINRetries}
	if err := a.store.SetPINState(st); err != nil {
		return fmt.Errorf("storing PIN: %w", err)
	}
	a.emit(PINSet{})
	return nil
}

// usablePINState returns the PIN state when a PIN is set and not blocked:
// CTAP2_ERR_PIN_NOT_SET or CTAP2_ERR_PIN_BLOCKED otherwise (CTAP 2.1
// sections 6.5.5.6 and 6.5.5.7).
func (a *Authenticator) usablePINState() (keystore.PINState, error) {
	st, err := a.store.PINState()
	if err != nil {
		return st, fmt.Errorf("reading PIN state: %w", err)
	}
	if st.Hash == nil {
		return st, ErrPINNotSet
	}
	if st.Retries <= 0 {
		return st, ErrPINBlocked
	}
	return st, nil
}

// checkPermissions validates the permissions a token is asked for: not
// none, and none this key cannot grant (be: no biometrics; unknown bits),
// CTAP 2.1 section 6.5.5.7.2 steps 1-3.
func checkPermissions(perms Permission) error {
	if perms == 0 {
		return ErrInvalidParameter
	}
	if perms&PermPersistentCredMgmtRO != 0 && perms != PermPersistentCredMgmtRO {
		return ErrInvalidParameter // pcmr stands alone (CTAP 2.2 section 6.5.5.7)
	}
	if perms&PermBioEnrollment != 0 || perms&^(PermMakeCredential|PermGetAssertion|PermCredentialMgmt|PermLargeBlobWrite|PermAuthenticatorCfg|PermPersistentCredMgmtRO) != 0 {
		return ErrUnauthorizedPermission
	}
	return nil
}

// issueToken makes a new pinUvAuthToken with perms (bound to rpID when it
// is not empty), replacing any earlier one, and returns it encrypted for
// the platform (CTAP 2.1 section 6.5.5.7.2 steps 9-11).
func (a *Authenticator) issueToken(proto PINProtocol, shared []byte, perms Permission, rpID string) (any, error) {
	a.volatile.pin.token = pinToken{value: randomBytes(32), inUse: true, issued: a.opts.Now(), permissions: perms, rpID: rpID}
	enc, err := proto.Encrypt(shared, a.volatile.pin.token.value)
	if err != nil {
		return nil, err
	}
	return clientPINResponse{PinUvAuthToken: enc}, nil
}

// checkPINHash verifies pinHashEnc against the stored PIN, with the retry
// and lockout rules of CTAP 2.1 section 6.5.5.7.2 steps 3-7.
func (a *Authenticator) checkPINHash(proto PINProtocol, shared, pinHashEnc []byte) error {
	st, err := a.usablePINState()
	if err != nil {
		return err
	}
	if a.volatile.pin.mismatches >= maxConsecutivePINMismatches {
		return ErrPINAuthBlocked
	}
	// Decrement first, so that pulling the plug mid-check costs a retry.
	st.Retries--
	if err := a.store.SetPINState(st); err != nil {
		return fmt.Errorf("storing PIN retries: %w", err)
	}
	got, err := proto.Decrypt(shared, pinHashEnc)
	if err != nil || len(got) != 16 || subtle.ConstantTimeCompare(got, st.Hash) != 1 {
		a.regenerateKeyAgreement()
		a.volatile.pin.mismatches++
		switch {
		case st.Retries <= 0:
			a.emit(PINBlocked{})
			return ErrPINBlocked
		case a.volatile.pin.mismatches >= maxConsecutivePINMismatches:
			return ErrPINAuthBlocked
		}
		return ErrPINInvalid
	}
	a.volatile.pin.mismatches = 0
	st.Retries = keystore.DefaultPINRetries
	if err := a.store.SetPINState(st); err != nil {
		return fmt.Errorf("storing PIN retries: %w", err)
	}
	return nil
}

// changePIN is clientPIN changePIN (CTAP 2.1 section 6.5.5.6).
func (a *Authenticator) changePIN(proto PINProtocol, req *clientPINRequest) error {
	if req.KeyAgreement == nil || req.PinUvAuthParam == nil || req.NewPinEnc == nil || req.PinHashEnc == nil {
		return ErrMissingParameter
	}
	if _, err := a.usablePINState(); err != nil {
		return err
	}
	shared, err := SharedSecret(proto, a.volatile.pin.keyAgreement, req.KeyAgreement)
	if err != nil {
		return err
	}
	if !proto.Verify(shared, append(append([]byte(nil), req.NewPinEnc...), req.PinHashEnc...), req.PinUvAuthParam) {
		return ErrPINAuthInvalid
	}
	if err := a.checkPINHash(proto, shared, req.PinHashEnc); err != nil {
		return err
	}
	pin, err := a.decryptNewPIN(proto, shared, req.NewPinEnc)
	if err != nil {
		return err
	}
	st, err := a.store.PINState()
	if err != nil {
		return fmt.Errorf("reading PIN state: %w", err)
	}
	newHash := pinHash(pin)
	if st.ForceChange && subtle.ConstantTimeCompare(newHash, st.Hash) == 1 {
		return ErrPINPolicyViolation // a forced change must change the PIN
	}
	st = keystore.PINState{Hash: newHash, CodePoints: utf8.RuneCount(pin), Retries: keystore.DefaultPINRetries}
	if err := a.store.SetPINState(st); err != nil {
		return fmt.Errorf("storing PIN: %w", err)
	}
	// st is a new PIN state without PersistentToken: CTAP 2.2, a PIN
	// change invalidates the persistent token (persistent.go).
	a.resetToken()
	a.emit(PINChanged{})
	return nil
}

// getPINToken is getPinToken (0x05) and
// getPinUvAuthTokenUsingPinWithPermissions (0x09), CTAP 2.1 sections
// 6.5.5.7.1 and 6.5.5.7.2.
func (a *Authenticator) getPINToken(proto PINProtocol, req *clientPINRequest, sub uint64) (any, error) {
	if req.KeyAgreement == nil || req.PinHashEnc == nil {
		return nil, ErrMissingParameter
	}
	perms := PermMakeCredential | PermGetAssertion // what a getPinToken token may do
	rpID := ""
	if sub == ClientPINGetPINToken {
		if req.Permissions != nil || req.RPID != nil {
			return nil, ErrInvalidParameter
		}
	} else {
		if req.Permissions == nil {
			return nil, ErrMissingParameter
		}
		perms = Permission(*req.Permissions)
		if err := checkPermissions(perms); err != nil {
			return nil, err
		}
		if req.RPID != nil {
			rpID = *req.RPID
		}
	}
	if _, err := a.usablePINState(); err != nil {
		return nil, err
	}
	shared, err := SharedSecret(proto, a.volatile.pin.keyAgreement, req.KeyAgreement)
	if err != nil {
		return nil, err
	}
	if err := a.checkPINHash(proto, shared, req.PinHashEnc); err != nil {
		return nil, err
	}
	st, err := a.store.PINState()
	if err != nil {
		return nil, fmt.Errorf("reading PIN state: %w", err)
	}
	if st.ForceChange {
		// getPinToken answers CTAP2_ERR_PIN_INVALID (CTAP 2.1 section
		// 6.5.5.7.1 step 8); getPinUvAuthTokenUsingPinWithPermissions
		// answers CTAP2_ERR_PIN_POLICY_VIOLATION (section 6.5.5.7.2 step 8).
		if sub == ClientPINGetPINToken {
			return nil, ErrPINInvalid
		}
		return nil, ErrPINPolicyViolation
	}
	if perms == PermPersistentCredMgmtRO {
		return a.issuePersistentToken(proto, shared)
	}
	resp, err := a.issueToken(proto, shared, perms, rpID)
	a.volatile.pin.token.legacy = sub == ClientPINGetPINToken
	return resp, err
}

// checkPinUvAuthProtocol validates pinUvAuthProtocol where pinUvAuthParam is
// present (CTAP 2.1 section 6.1.2 step 2).
func checkPinUvAuthProtocol(p *uint64) error {
	if p == nil {
		return ErrMissingParameter
	}
	if _, ok := PINProtocolFor(*p); !ok {
		return ErrInvalidParameter
	}
	return nil
}

// verifyToken checks pinUvAuthParam over message with the current token,
// its permission and its RP binding (CTAP 2.1 section 6.1.2 step 11,
// section 6.2.2 step 6). On success a token not yet bound is bound to rpID.
//
// A token without the permission (never granted, or already used up by an
// earlier request) or bound to another RP ID is CTAP2_ERR_PIN_AUTH_INVALID
// in every command that takes a token (CTAP 2.1 sections 6.1.2 step 11,
// 6.2.2 step 6, 6.8.x, 6.10.2, 6.11.1). CTAP2_ERR_UNAUTHORIZED_PERMISSION
// is only for asking for a token with a permission this key cannot grant.
func (a *Authenticator) verifyToken(protocol *uint64, param, message []byte, perm Permission, rpID string) error {
	return a.verifyTokenWith(protocol, param, message, perm, rpID, false)
}

// verifyTokenWith is verifyToken; anyLegacy also accepts a getPinToken
// token whatever its permissions, as FIDO_2_1_PRE keys did for the preview
// credential management command.
func (a *Authenticator) verifyTokenWith(protocol *uint64, param, message []byte, perm Permission, rpID string, anyLegacy bool) error {
	if err := checkPinUvAuthProtocol(protocol); err != nil {
		return err
	}
	proto, _ := PINProtocolFor(*protocol)
	if !a.tokenUsable() {
		return ErrPINAuthInvalid
	}
	t := &a.volatile.pin.token
	if !proto.Verify(t.value, message, param) {
		return ErrPINAuthInvalid
	}
	if t.permissions&perm == 0 && !(anyLegacy && t.legacy) {
		return ErrPINAuthInvalid
	}
	if rpID != "" || perm == PermMakeCredential || perm == PermGetAssertion {
		if t.rpID != "" && t.rpID != rpID {
			return ErrPINAuthInvalid
		}
		if t.rpID == "" {
			t.rpID = rpID
		}
	}
	return nil
}

// touchProbe answers a zero-length pinUvAuthParam: the platform wants the
// user to pick this key by touching it (CTAP 2.1 section 6.1.2 step 1).
func (a *Authenticator) touchProbe(ctx context.Context, command, rpID string) error {
	if err := a.requestPresence(ctx, PresenceRequest{Command: command, RPID: rpID}); err != nil {
		return err
	}
	set, err := a.pinSet()
	if err != nil {
		return err
	}
	if set {
		return ErrPINInvalid
	}
	return ErrPINNotSet
}

// requireUV applies alwaysUv and the PIN rules to a request that carries no
// pinUvAuthParam: it fails with CTAP2_ERR_PUAT_REQUIRED when a PIN is set and
// UV is required, or CTAP2_ERR_PIN_NOT_SET when UV is required and no PIN
// exists to give it (CTAP 2.1 section 6.1.2 steps 6-7, section 6.11.2).
func (a *Authenticator) requireUV(uvNeeded bool) error {
	cfg, err := a.store.Config()
	if err != nil {
		return fmt.Errorf("reading config: %w", err)
	}
	if !uvNeeded && !cfg.AlwaysUV {
		return nil
	}
	set, err := a.pinSet()
	if err != nil {
		return err
	}
	if set {
		return ErrPUATRequired
	}
	if cfg.AlwaysUV {
		return ErrPINNotSet
	}
	return nil
}

// authorizeMakeCredential runs the user verification steps of
// makeCredential and reports whether the user was verified.
func (a *Authenticator) authorizeMakeCredential(req *MakeCredentialRequest, rk bool) (bool, error) {
	if req.PinUvAuthParam == nil {
		// makeCredUvNotRqd: only discoverable credentials need UV once a
		// PIN is set (CTAP 2.1 section 6.1.2 step 7).
		set, err := a.pinSet()
		if err != nil {
			return false, err
		}
		return false, a.requireUV(set && rk)
	}
	if err := a.verifyToken(req.PinUvAuthProtocol, req.PinUvAuthParam, req.ClientDataHash, PermMakeCredential, req.RP.ID); err != nil {
		return false, err
	}
	return true, nil
}

// consumeTokenPresence clears the token's user-present flag and its
// permissions other than lbw after a makeCredential or getAssertion used it
// with user presence (CTAP 2.1 section 6.1.2 step 14, section 6.2.2 step 9:
// only in the step that runs when "up" is true, so that a silent up=false
// pre-flight over an allow or exclude list leaves the token usable for the
// real request).
func (a *Authenticator) consumeTokenPresence() {
	t := &a.volatile.pin.token
	t.userPresent = false
	t.permissions &= PermLargeBlobWrite
}

// minPINLengthFor returns the minimum PIN length for the minPinLength
// extension, if rpID is allowed to learn it (CTAP 2.1 section 12.4).
func (a *Authenticator) minPINLengthFor(rpID string) (int, bool) {
	cfg, err := a.store.Config()
	if err != nil {
		return 0, false
	}
	for _, id := range cfg.MinPINLengthRPIDs {
		if id == rpID {
			return a.minPINLength(), true
		}
	}
	return 0, false
}

// enterpriseAttestation validates the enterpriseAttestation parameter
// (CTAP 2.1 section 6.1.2 step 9) and reports whether enterprise
// attestation is given for rpID (section 7.1): always for
// platform-managed (2), and for vendor-facilitated (1) only to the RP IDs
// configured on this key (Options.EnterpriseRPIDs). Otherwise the
// ordinary attestation is returned and epAtt is left out.
func (a *Authenticator) enterpriseAttestation(ep *uint64, rpID string) (bool, error) {
	if ep == nil {
		return false, nil
	}
	cfg, err := a.store.Config()
	if err != nil {
		return false, fmt.Errorf("reading config: %w", err)
	}
	if !cfg.EnterpriseAttestation {
		return false, ErrInvalidParameter
	}
	switch *ep {
	case enterpriseVendorFacilitated:
		for _, id := range a.opts.EnterpriseRPIDs {
			if id == rpID {
				return true, nil
			}
		}
		return false, nil
	case enterprisePlatformManaged:
		return true, nil
	}
	return false, ErrInvalidOption
}

// enterpriseAttestation values (CTAP 2.1 section 7.1).
const (
	enterpriseVendorFacilitated = 1
	enterprisePlatformManaged   = 2
)
