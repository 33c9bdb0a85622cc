// Package ctap2 is the authenticator: it answers CTAP 2.1 commands
// (authenticatorMakeCredential, authenticatorGetAssertion, clientPIN, ...)
// and U2F/CTAP1 messages as a FIDO2 roaming security key would, over the
// interfaces of package keystore. It knows nothing of transports: package hid
// carries its messages.
//
// The authenticator side: New, Options and Authenticator (HandleCBOR,
// HandleMSG, PowerCycle, and the virtual-credential methods the control API
// uses), the Presence and UserVerifier it asks, attestation, and the
// Observer that is told what commands did as typed Events
// (CredentialCreated, PresenceRequested, ...).
//
// Shared with the platform side (package ctap2/client, ctap2/browser, the
// CLI, tests): the command codes and subcommands, Status and its codes, the
// request and response types (MakeCredentialRequest, GetAssertionResponse,
// GetInfoResponse, CredentialParameter, ...) with typed extension inputs
// (MakeCredentialExtensions, GetAssertionExtensions, HMACSecretInput) and
// keys (COSEKey, COSEKeyAgreement), their CTAP2 CBOR form (Marshal,
// Unmarshal), the PIN/UV auth protocols (PINProtocol, SharedSecret,
// Permission) and the messages a pinUvAuthParam authenticates
// (ConfigAuthMessage, CredMgmtAuthMessage, LargeBlobAuthMessage), the
// large-blob array format (LargeBlobEntry) and U2F's instruction codes.
// They are the wire format, which both sides must agree on; no caller
// needs a CBOR library to fill them in. The platform's rules (which
// protocol, which token) live in ctap2/client.
package ctap2

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/vkey-dev/vkey/keystore"
)

// CTAP2 command codes (CTAP 2.1 section 6).
const (
	CmdMakeCredential        byte = 0x01
	CmdGetAssertion          byte = 0x02
	CmdGetInfo               byte = 0x04
	CmdClientPIN             byte = 0x06
	CmdReset                 byte = 0x07
	CmdGetNextAssertion      byte = 0x08
	CmdBioEnrollment         byte = 0x09
	CmdCredentialManagement  byte = 0x0A
	CmdSelection             byte = 0x0B
	CmdLargeBlobs            byte = 0x0C
	CmdConfig                byte = 0x0D
	CmdBioEnrollmentPreview  byte = 0x40
	CmdCredentialMgmtPreview byte = 0x41
)

// PasskeyKind says whether new credentials are device-bound or syncable.
type PasskeyKind string

// Passkey kinds (WebAuthn section 6.1.3, backup eligibility).
const (
	DeviceBound PasskeyKind = "device-bound"
	Syncable    PasskeyKind = "syncable"
)

// AttestationFormat selects the attestation statement of makeCredential.
type AttestationFormat string

// Attestation formats (WebAuthn section 8).
const (
	AttestationNone       AttestationFormat = "none"
	AttestationPackedSelf AttestationFormat = "packed-self"
	AttestationPacked     AttestationFormat = "packed" // x5c from the per-installation CA
	AttestationTPM        AttestationFormat = "tpm"
)

// DefaultAAGUID is vkey's own AAGUID, used unless configured otherwise.
var DefaultAAGUID = [16]byte{0x76, 0x6b, 0x65, 0x79, 0x2d, 0x76, 0x69, 0x72, 0x74, 0x75, 0x61, 0x6c, 0x2d, 0x6b, 0x65, 0x79} // "vkey-virtual-key"

// Options configure an Authenticator. Store is required; zero values of the
// rest pick the defaults named on each field.
type Options struct {
	// Store is the authenticator's memory.
	Store keystore.Store
	// SoftwareKeys makes syncable keys, and device-bound ones when
	// DeviceKeys is nil or lacks the algorithm (default keystore.Software{}).
	SoftwareKeys keystore.KeyProvider
	// DeviceKeys makes device-bound keys (the TPM); nil means software keys.
	// It makes every U2F (CTAP1) registration's key too: with TPM keys a
	// U2F registration is a stored credential (the wrapped key is too long
	// for a key handle) whose 32-byte key handle only names it; with
	// software keys the 64-byte handle carries the key (see u2f.go).
	DeviceKeys keystore.KeyProvider
	// Presence asks for user presence (default: deny, a key nobody touches).
	Presence Presence
	// UserVerifier is a built-in user verification method; nil means the
	// key has none (only the PIN verifies users).
	UserVerifier UserVerifier
	// AAGUID identifies the authenticator model (default DefaultAAGUID).
	AAGUID [16]byte
	// Attestation is the makeCredential attestation format (default packed with x5c).
	Attestation AttestationFormat
	// Passkeys is the default kind of new credentials (default device-bound).
	Passkeys PasskeyKind
	// Profile, when set, gives the key the shape of a hardware key
	// (`vkey run --profile`); Algorithms, MaxMsgSize and FirmwareVersion
	// left at their defaults take the profile's.
	Profile *Profile
	// AttestationCA, when set, issues the packed attestation certificates
	// instead of the installation's own CA (`vkey run --attestation-ca`).
	AttestationCA *AttestationCA
	// Algorithms are the credential algorithms getInfo lists and
	// makeCredential accepts, in the key's order of preference (default
	// DefaultAlgorithms; `vkey run --algorithms`).
	Algorithms []keystore.Algorithm
	// FirmwareVersion is reported by getInfo.
	FirmwareVersion uint64
	// MaxMsgSize is the largest CTAP message accepted (default
	// DefaultMaxMsgSize).
	MaxMsgSize int
	// EnterpriseRPIDs are the RP IDs given vendor-facilitated enterprise
	// attestation (CTAP 2.1 section 7.1, `vkey run --ep-rp-id`).
	EnterpriseRPIDs []string
	// Now is the clock (default time.Now); tests replace it.
	Now func() time.Time
	// Logger receives diagnostics; never secrets (default: discard).
	Logger *slog.Logger
	// Observer is told what commands did (see Event); nil tells nobody.
	Observer Observer
}

// Authenticator is a CTAP 2.1 authenticator. Commands are processed one at a
// time, as on a hardware key.
type Authenticator struct {
	opts  Options
	store keystore.Store

	// cmd serialises commands (CTAP2 and U2F), as on a hardware key. A
	// command holds it from start to end, also while it waits for user
	// presence, when it releases mu (see requestPresence); another
	// command then answers busy at once instead of waiting behind it.
	cmd commandGate

	mu sync.Mutex // guards the state below; management takes only mu
	// epoch changes when a power cycle, a reset or the control API
	// changes state under a command waiting for presence: the command
	// then gives up (see requestPresence).
	epoch uint64
	// cancelWait ends the pending presence wait (a power cycle does, as
	// unplugging would).
	cancelWait context.CancelFunc
	// powerUp is when the authenticator was (virtually) plugged in.
	powerUp time.Time
	// volatile holds state that a power cycle forgets.
	volatile volatileState
	// wrapKey seals credential IDs; attestKey and attestCert sign packed
	// attestation. All three are loaded from the store's identity.
	wrapKey    []byte
	attestKey  crypto.Signer
	attestCert []byte
	// attestChain is what x5c carries after the leaf (an intermediate
	// user CA); attestRoot is the CA certificate AttestationRoot returns.
	attestChain [][]byte
	attestRoot  []byte
	// enterprise signs enterprise attestation (see enterpriseIdentity).
	enterprise attestationSigner
	// keyCache holds recently loaded credential keys (see loadKey).
	keyCache map[string]keystore.Key
	// u2f turns presence into U2F's polling model.
	u2f u2fPresence
	// events waits for the end of a command to reach opts.Observer.
	events events
}

// volatileState is what a power cycle resets (CTAP 2.1 section 6.5.5.x:
// pinUvAuthToken, key agreement key, consecutive PIN mismatches;
// getNextAssertion and credential management enumeration state).
type volatileState struct {
	next *nextAssertionState
	pin  pinVolatile
	cm   credMgmtVolatile
	lb   *largeBlobWrite
	// uvFailures counts built-in user verification failures.
	uvFailures int
}

// New returns an authenticator over opts.Store.
func New(opts Options) (*Authenticator, error) {
	if opts.Store == nil {
		return nil, errors.New("ctap2: Options.Store is required")
	}
	if opts.SoftwareKeys == nil {
		opts.SoftwareKeys = keystore.Software{}
	}
	if opts.Presence == nil {
		opts.Presence = denyPresence{}
	}
	if opts.AAGUID == ([16]byte{}) {
		opts.AAGUID = DefaultAAGUID
	}
	if opts.Attestation == "" {
		opts.Attestation = AttestationPacked
	}
	switch opts.Attestation {
	case AttestationNone, AttestationPackedSelf, AttestationPacked, AttestationTPM:
	default:
		return nil, fmt.Errorf("ctap2: unknown attestation format %q (want none, packed-self, packed or tpm)", opts.Attestation)
	}
	if opts.Passkeys == "" {
		opts.Passkeys = DeviceBound
	}
	if opts.Passkeys != DeviceBound && opts.Passkeys != Syncable {
		return nil, fmt.Errorf("ctap2: unknown passkey kind %q (want device-bound or syncable)", opts.Passkeys)
	}
	opts.Profile = opts.Profile.clone() // the caller may change its profile later
	applyProfile(&opts)
	if opts.MaxMsgSize <= 0 {
		opts.MaxMsgSize = DefaultMaxMsgSize
	}
	if err := checkAlgorithms(&opts); err != nil {
		return nil, err
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	a := &Authenticator{opts: opts, store: opts.Store}
	if err := a.ensureIdentity(); err != nil {
		return nil, err
	}
	a.mu.Lock()
	a.powerCycleLocked()
	a.mu.Unlock()
	return a, nil
}

// PowerCycle resets the volatile state as unplugging and replugging the key
// would: tokens, key agreement keys, the per-boot PIN mismatch counter and
// enumeration state; the 10-second reset window starts again.
//
// A request waiting for user presence is cancelled at once, as unplugging
// would; its host gets CTAP2_ERR_KEEPALIVE_CANCEL.
func (a *Authenticator) PowerCycle() {
	defer a.flushEvents(context.Background())
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cancelWait != nil {
		a.cancelWait()
	}
	a.powerCycleLocked()
	a.u2fCancel()
}

// changedLocked records, with mu held, that state changed outside the
// command: a command waiting for presence gives up rather than act on
// what it read before.
func (a *Authenticator) changedLocked() { a.epoch++ }

func (a *Authenticator) powerCycleLocked() {
	a.changedLocked()
	a.powerUp = a.opts.Now()
	a.volatile = volatileState{}
	a.keyCache = nil
	a.initPINVolatileLocked()
}

// MaxMsgSize is the largest CTAP message the authenticator accepts.
func (a *Authenticator) MaxMsgSize() int { return a.opts.MaxMsgSize }

type commandFunc func(a *Authenticator, ctx context.Context, params []byte) (any, error)

// commandTable maps CTAP2 command codes to their handlers.
func commandTable(cmd byte) (commandFunc, string) {
	switch cmd {
	case CmdMakeCredential:
		return (*Authenticator).makeCredential, "makeCredential"
	case CmdGetAssertion:
		return (*Authenticator).getAssertion, "getAssertion"
	case CmdGetNextAssertion:
		return (*Authenticator).getNextAssertion, "getNextAssertion"
	case CmdGetInfo:
		return (*Authenticator).getInfo, "getInfo"
	case CmdClientPIN:
		return (*Authenticator).clientPIN, "clientPIN"
	case CmdReset:
		return (*Authenticator).reset, "reset"
	case CmdCredentialManagement:
		return (*Authenticator).credentialManagement, "credentialManagement"
	case CmdCredentialMgmtPreview:
		return (*Authenticator).credentialManagementPreview, "credentialManagement"
	case CmdSelection:
		return (*Authenticator).selection, "selection"
	case CmdLargeBlobs:
		return (*Authenticator).largeBlobs, "largeBlobs"
	case CmdConfig:
		return (*Authenticator).config, "config"
	}
	return nil, ""
}

// HandleCBOR processes one CTAPHID_CBOR message: a command byte followed by
// its CBOR parameters. It returns the status byte followed by the CBOR
// response. It never panics on any input.
func (a *Authenticator) HandleCBOR(ctx context.Context, msg []byte) []byte {
	if len(msg) == 0 {
		return []byte{byte(ErrInvalidLength)}
	}
	if len(msg) > a.opts.MaxMsgSize {
		return []byte{byte(ErrRequestTooLarge)}
	}
	fn, name := commandTable(msg[0])
	if fn == nil || !a.profileHasCommand(msg[0]) {
		return []byte{byte(ErrInvalidCommand)}
	}
	defer a.flushEvents(ctx) // after unlockCommand
	if err := a.lockCommand(ctx); errors.Is(err, errGateBusy) {
		// Another command waits for a touch: a hardware key answers busy
		// (CTAP 2.1 section 11.2.4; CTAP1_ERR_CHANNEL_BUSY is the same
		// code as CTAPHID's ERR_CHANNEL_BUSY).
		return []byte{byte(ErrChannelBusy)}
	} else if err != nil {
		// Cancelled before it started (CTAP 2.1 section 11.2.9.1.5).
		return []byte{byte(ErrKeepaliveCancel)}
	}
	defer a.unlockCommand()
	if msg[0] != CmdGetAssertion && msg[0] != CmdGetNextAssertion {
		// Any other command ends an assertion sequence (CTAP 2.1 section 6.3).
		a.volatile.next = nil
	}
	if msg[0] != CmdCredentialManagement && msg[0] != CmdCredentialMgmtPreview {
		// Likewise a credential management enumeration, as OpenSK does:
		// the GetNext subcommands must follow their Begin (CTAP 2.1
		// sections 6.8.3 and 6.8.4), and a platform never interleaves
		// other commands with them.
		a.volatile.cm = credMgmtVolatile{}
	}
	resp, err := a.safeCall(ctx, fn, msg[1:])
	if err != nil {
		var st Status
		if !errors.As(err, &st) {
			a.opts.Logger.Error("command failed", "command", name, "err", err)
			st = ErrOther
		}
		return []byte{byte(st)}
	}
	if resp == nil {
		return []byte{byte(StatusOK)}
	}
	body, err := Marshal(resp)
	if err != nil {
		a.opts.Logger.Error("encoding response", "command", name, "err", err)
		return []byte{byte(ErrOther)}
	}
	return append([]byte{byte(StatusOK)}, body...)
}

// safeCall turns a panic in a command into CTAP1_ERR_OTHER so that no input
// can bring the key down; the panic is logged as the bug it is.
func (a *Authenticator) safeCall(ctx context.Context, fn commandFunc, params []byte) (resp any, err error) {
	defer func() {
		if r := recover(); r != nil {
			a.opts.Logger.Error("BUG: command panicked", "panic", r)
			resp, err = nil, ErrOther
		}
	}()
	return fn(a, ctx, params)
}

// lockCommand starts a command: it takes the command gate and mu. It
// takes nothing and returns errGateBusy when another command holds the
// gate while it waits for user presence, or ctx's error when ctx ends
// while another command runs. Only callers that do not come through one
// hid.Device (which runs one request at a time) ever wait here.
func (a *Authenticator) lockCommand(ctx context.Context) error {
	if err := a.cmd.enter(ctx); err != nil {
		return err
	}
	a.mu.Lock()
	return nil
}

// unlockCommand ends a command started by lockCommand.
func (a *Authenticator) unlockCommand() {
	a.mu.Unlock()
	a.cmd.leave()
}

// requestPresence asks the user and maps the outcome to a CTAP status. It
// is called with mu held, by a command holding cmdMu, and releases mu while
// it waits: management (the control API, a power cycle) must not wait for
// a touch. If state changed meanwhile (power cycle, reset, credentials
// changed through the control API), the command gives up with
// CTAP2_ERR_KEEPALIVE_CANCEL rather than act on what it read before.
func (a *Authenticator) requestPresence(ctx context.Context, req PresenceRequest) error {
	if a.u2fBusy(ctx) {
		// A U2F client is being asked for its touch: serve this request
		// as a hardware key would while busy, rather than deny it or let
		// it take the touch meant for the other.
		return ErrChannelBusy
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	epoch := a.epoch
	a.cancelWait = cancel
	a.cmd.setWaiting(true)
	a.mu.Unlock()
	err := a.askPresence(ctx, req)
	a.mu.Lock()
	a.cmd.setWaiting(false)
	a.cancelWait = nil
	if err == nil && a.epoch != epoch {
		return ErrKeepaliveCancel // approved, but for a state that is gone
	}
	return presenceStatus(err)
}
