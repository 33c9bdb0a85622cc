package ctap2

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/vkey-dev/vkey/keystore"
)

// U2F instructions (FIDO U2F Raw Message Formats v1.2, and CTAP 2.1
// section 11.2.9.1.1 for their carriage over CTAPHID_MSG).
const (
	U2FRegister     = 0x01 // U2F_REGISTER
	U2FAuthenticate = 0x02 // U2F_AUTHENTICATE
	U2FVersion      = 0x03 // U2F_VERSION
)

// U2F authentication control bytes, and the timing of U2F presence.
const (
	u2fCheckOnly       = 0x07
	u2fEnforcePresence = 0x03
	u2fDontEnforce     = 0x08

	// u2fPresenceValidity is how long a touch given for a U2F request
	// stays usable: clients poll with SW_CONDITIONS_NOT_SATISFIED answers.
	u2fPresenceValidity = 10 * time.Second
	// u2fPollGap is how long a U2F request being asked for stays
	// pending without a poll: after it, another request may take over.
	u2fPollGap = time.Second
	// u2fAbandon is how long without a poll before the question is
	// withdrawn: its client is gone (clients poll every 100-300 ms).
	u2fAbandon = 3 * time.Second
	// u2fAskTimeout bounds one question.
	u2fAskTimeout = 30 * time.Second
)

// U2F status words.
var (
	swNoError                = []byte{0x90, 0x00}
	swConditionsNotSatisfied = []byte{0x69, 0x85}
	swCommandNotAllowed      = []byte{0x69, 0x86}
	swWrongData              = []byte{0x6A, 0x80}
	swWrongLength            = []byte{0x67, 0x00}
	swClaNotSupported        = []byte{0x6E, 0x00}
	swInsNotSupported        = []byte{0x6D, 0x00}
)

// channelKey is the context key of the channel a request came on.
type channelKey struct{}

// WithChannel returns ctx naming the transport channel a request came on
// (its CTAPHID channel id): a touch asked for a U2F request belongs to that
// channel, and CancelChannel withdraws it.
func WithChannel(ctx context.Context, channel uint32) context.Context {
	return context.WithValue(ctx, channelKey{}, channel)
}

// channelOf returns the channel WithChannel put in ctx.
func channelOf(ctx context.Context) (uint32, bool) {
	ch, ok := ctx.Value(channelKey{}).(uint32)
	return ch, ok
}

// u2fPresence turns the blocking Presence into U2F's polling model: the
// first request starts asking the user in the background and answers
// SW_CONDITIONS_NOT_SATISFIED; the same request polled again within
// u2fPresenceValidity of the touch, from the same channel, consumes it.
// The question and the touch are bound to the request (instruction and
// data) and channel they came from: another request does not take them.
type u2fPresence struct {
	mu    sync.Mutex
	ask   *u2fAsk   // the question being asked, or nil
	last  *u2fAsk   // the last question asked: the next waits for its end
	grant *u2fGrant // a touch not yet consumed, or nil
}

// u2fOrigin is the request and channel a question or a touch is for.
type u2fOrigin struct {
	key        [32]byte // SHA-256 of the instruction and data
	channel    uint32
	hasChannel bool
}

func (o u2fOrigin) sameChannel(ctx context.Context) bool {
	ch, ok := channelOf(ctx)
	return ok == o.hasChannel && ch == o.channel
}

type u2fAsk struct {
	u2fOrigin
	lastPoll time.Time
	cancel   context.CancelFunc
	done     chan struct{}
}

type u2fGrant struct {
	u2fOrigin
	at time.Time
}

// u2fTakePresence reports whether a touch for this request is available,
// and otherwise starts asking for one unless another request is being
// asked for.
func (a *Authenticator) u2fTakePresence(ctx context.Context, command string, key [32]byte) bool {
	p := &a.u2f
	p.mu.Lock()
	defer p.mu.Unlock()
	ch, hasCh := channelOf(ctx)
	origin := u2fOrigin{key: key, channel: ch, hasChannel: hasCh}
	if g := p.grant; g != nil {
		switch {
		case a.opts.Now().Sub(g.at) >= u2fPresenceValidity:
			p.grant = nil
		case g.u2fOrigin == origin:
			p.grant = nil
			return true
		}
	}
	now := time.Now()
	if ask := p.ask; ask != nil {
		if ask.u2fOrigin == origin {
			ask.lastPoll = now
			return false
		}
		if now.Sub(ask.lastPoll) < u2fPollGap {
			return false // another request's question: it keeps the touch
		}
		ask.cancel() // its client stopped polling
		p.ask = nil
	}
	previous := p.last
	actx, cancel := context.WithTimeout(context.Background(), u2fAskTimeout)
	ask := &u2fAsk{u2fOrigin: origin, lastPoll: now, cancel: cancel, done: make(chan struct{})}
	p.ask, p.last = ask, ask
	go func() {
		defer close(ask.done)
		defer cancel()
		if previous != nil {
			<-previous.done
		}
		stop := a.u2fWatch(actx, ask)
		err := a.askPresence(actx, PresenceRequest{Command: command})
		stop()
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.ask != ask {
			return
		}
		p.ask = nil
		if err == nil {
			p.grant = &u2fGrant{u2fOrigin: ask.u2fOrigin, at: a.opts.Now()}
		}
	}()
	return false
}

// u2fWatch withdraws ask once its client stops polling; stop ends the
// watch.
func (a *Authenticator) u2fWatch(ctx context.Context, ask *u2fAsk) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		t := time.NewTicker(u2fAbandon / 4)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			a.u2f.mu.Lock()
			gone := time.Since(ask.lastPoll) > u2fAbandon
			a.u2f.mu.Unlock()
			if gone {
				ask.cancel()
				return
			}
		}
	}()
	return cancel
}

// u2fBusy is asked by a CTAP2 command about to wait for presence: it
// reports whether a U2F request of another channel is being asked for
// (and polled), and otherwise withdraws any question so that the touch
// goes to the command.
func (a *Authenticator) u2fBusy(ctx context.Context) bool {
	p := &a.u2f
	p.mu.Lock()
	ask := p.ask
	if ask == nil {
		p.mu.Unlock()
		return false
	}
	if !ask.sameChannel(ctx) && time.Since(ask.lastPoll) < u2fPollGap {
		p.mu.Unlock()
		return true
	}
	p.ask = nil
	ask.cancel()
	p.mu.Unlock()
	<-ask.done
	return false
}

// u2fCancel withdraws the question and forgets the touch (power cycle).
func (a *Authenticator) u2fCancel() { a.u2fCancelIf(func(u2fOrigin) bool { return true }) }

// CancelChannel withdraws what the authenticator keeps for channel between
// requests, a U2F touch asked for or given, as CTAPHID_CANCEL or a
// resynchronization of the channel asks (CTAP 2.1 section 11.2.9.1.5).
func (a *Authenticator) CancelChannel(channel uint32) {
	a.u2fCancelIf(func(o u2fOrigin) bool { return o.hasChannel && o.channel == channel })
}

func (a *Authenticator) u2fCancelIf(match func(u2fOrigin) bool) {
	p := &a.u2f
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ask != nil && match(p.ask.u2fOrigin) {
		p.ask.cancel()
		p.ask = nil
	}
	if p.grant != nil && match(p.grant.u2fOrigin) {
		p.grant = nil
	}
}

// withoutU2F is getInfo's versions without U2F_V2, which alwaysUv turns
// off (CTAP 2.1 section 7.2).
func withoutU2F(versions []string) []string {
	var out []string
	for _, v := range versions {
		if v != "U2F_V2" {
			out = append(out, v)
		}
	}
	return out
}

// u2fKey names a U2F request: a client polls with the same APDU.
func u2fKey(ins byte, data []byte) [32]byte {
	return sha256Sum(append([]byte{ins}, data...))
}

// parseAPDU splits a command APDU in short or extended length encoding
// (ISO 7816-4) into its header and data; ok is false when the lengths do
// not add up.
func parseAPDU(apdu []byte) (cla, ins, p1 byte, data []byte, ok bool) {
	if len(apdu) < 4 {
		return 0, 0, 0, nil, false
	}
	cla, ins, p1 = apdu[0], apdu[1], apdu[2]
	body := apdu[4:]
	switch {
	case len(body) == 0, len(body) == 1: // no data, optional short Le
		return cla, ins, p1, nil, true
	case body[0] == 0 && len(body) >= 3: // extended length
		n := int(binary.BigEndian.Uint16(body[1:3]))
		if n == 0 {
			return cla, ins, p1, nil, len(body) == 3 || len(body) == 5
		}
		rest := body[3:]
		if len(rest) != n && len(rest) != n+2 {
			return 0, 0, 0, nil, false
		}
		return cla, ins, p1, rest[:n], true
	default: // short length
		n := int(body[0])
		rest := body[1:]
		if len(rest) != n && len(rest) != n+1 {
			return 0, 0, 0, nil, false
		}
		return cla, ins, p1, rest[:n], true
	}
}

// HandleMSG processes one CTAPHID_MSG message: a U2F/CTAP1 request APDU.
// It returns the response APDU (data followed by the status word).
func (a *Authenticator) HandleMSG(ctx context.Context, apdu []byte) []byte {
	cla, ins, p1, data, ok := parseAPDU(apdu)
	if !ok {
		return swWrongLength
	}
	if cla != 0 {
		return swClaNotSupported
	}
	defer a.flushEvents(ctx) // after unlockCommand
	if a.lockCommand(ctx) != nil {
		return swConditionsNotSatisfied // busy with a touch (or cancelled): poll again
	}
	defer a.unlockCommand()
	a.volatile.next = nil
	if cfg, err := a.store.Config(); err != nil || cfg.AlwaysUV {
		// alwaysUv turns U2F off: it has no user verification (CTAP 2.1
		// section 7.2); OpenSK answers SW_COMMAND_NOT_ALLOWED as here.
		return swCommandNotAllowed
	}
	switch ins {
	case U2FVersion:
		if len(data) != 0 {
			return swWrongLength
		}
		return append([]byte("U2F_V2"), swNoError...)
	case U2FRegister:
		return a.u2fRegister(ctx, data)
	case U2FAuthenticate:
		return a.u2fAuthenticate(ctx, p1, data)
	}
	return swInsNotSupported
}

// maxU2FKeyHandleLength is the longest U2F key handle: its length is one
// byte (FIDO U2F raw message formats sections 4.3 and 5.4).
const maxU2FKeyHandleLength = 255

// u2fProvider is the provider of U2F keys: the device provider (the TPM)
// when it makes P-256 keys, as for device-bound CTAP2 credentials. U2F
// credentials are device-bound whatever --passkeys says: U2F has no backup
// flags and no backup ever holds a U2F key, so a user who keeps
// device-bound keys in the TPM gets every U2F key there too, as a hardware
// key keeps its U2F keys in its secure element.
func (a *Authenticator) u2fProvider() keystore.KeyProvider {
	if p := a.opts.DeviceKeys; p != nil && p.Supports(keystore.AlgES256) {
		return p
	}
	return a.opts.SoftwareKeys
}

// u2fRegister is U2F_REGISTER (U2F raw messages section 4).
func (a *Authenticator) u2fRegister(ctx context.Context, data []byte) []byte {
	if len(data) != 64 {
		return swWrongLength
	}
	challenge, appID := data[:32], data[32:]
	if !a.u2fTakePresence(ctx, "U2F register", u2fKey(U2FRegister, data)) {
		return swConditionsNotSatisfied
	}
	provider := a.u2fProvider()
	blob, key, err := provider.Generate(keystore.AlgES256)
	if err != nil {
		a.opts.Logger.Error("U2F key generation", "err", err)
		return swWrongData
	}
	pub, ok := key.Public().(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return swWrongData
	}
	point, err := pub.Bytes()
	if err != nil {
		return swWrongData
	}
	cred := &keystore.Credential{Algorithm: keystore.AlgES256, Provider: provider.Name(), KeyBlob: blob}
	// A software key's scalar fits the handle (kind 1, 64 bytes); a TPM's
	// wrapped key (about 290 bytes with its ID) does not, so the store
	// keeps it and the handle only names it (kind 7, 32 bytes).
	handle, stored, err := sealCredentialIDWithin(a.wrapKey, appID, cred, maxU2FKeyHandleLength)
	if err != nil || len(handle) > maxU2FKeyHandleLength {
		a.opts.Logger.Error("U2F key handle", "err", err, "length", len(handle))
		return swWrongData
	}
	if stored {
		if err := a.storeU2FCredential(cred, handle, pub); err != nil {
			a.opts.Logger.Error("U2F key handle", "err", err)
			return swWrongData
		}
	}
	toSign := append([]byte{0x00}, appID...)
	toSign = append(toSign, challenge...)
	toSign = append(toSign, handle...)
	toSign = append(toSign, point...)
	digest := sha256Sum(toSign)
	sig, err := a.attestKey.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return swWrongData
	}
	out := append([]byte{0x05}, point...)
	out = append(out, byte(len(handle)))
	out = append(out, handle...)
	out = append(out, a.attestCert...)
	out = append(out, sig...)
	a.emit(CredentialCreated{RPIDHash: [32]byte(appID), CredentialID: handle, U2F: true})
	return append(out, swNoError...)
}

// storeU2FCredential stores the credential of a U2F key handle that
// leaves its key to the store (kind 7). It has no RP ID: U2F gives only
// the application ID's hash, which the handle binds (its additional
// data); findCredential and u2fCredential check it. As for a CTAP2
// credential, a crash after this write and before the answer leaves a
// credential nobody knows, which reset removes.
func (a *Authenticator) storeU2FCredential(cred *keystore.Credential, handle []byte, pub *ecdsa.PublicKey) error {
	cose, err := encodeCOSEKey(keystore.AlgES256, pub)
	if err != nil {
		return err
	}
	cred.ID, cred.PublicKey, cred.Created = handle, cose, a.opts.Now()
	if err := a.store.PutCredential(cred); err != nil {
		return fmt.Errorf("storing U2F credential: %w", err)
	}
	return nil
}

// u2fCredential finds the credential of a U2F key handle for the
// application whose SHA-256 is appID: the one the handle seals or, for a
// handle that leaves its key to the store (kind 7: a TPM key made by
// U2F_REGISTER), the stored one. A handle of another application, or of a
// deleted credential, is an error.
func (a *Authenticator) u2fCredential(appID, handle []byte) (*keystore.Credential, error) {
	sealed, err := openCredentialIDHash(a.wrapKey, appID, handle)
	if err != nil {
		return nil, err
	}
	stored, err := a.store.Credential(handle)
	switch {
	case errors.Is(err, keystore.ErrDeleted):
		// A stored credential deleted through credential management or the
		// control API is gone for U2F too: its ID may still open, but its
		// tombstone refuses it.
		return nil, err
	case errors.Is(err, keystore.ErrNotFound):
		return sealed, nil // a kind 7 handle without its credential has no KeyBlob
	case err != nil:
		return nil, err
	}
	if sealed.KeyBlob != nil {
		return sealed, nil
	}
	if h := sha256Sum([]byte(stored.RPID)); stored.RPID != "" && !bytes.Equal(h[:], appID) {
		return nil, errCredIDInvalid
	}
	return stored, nil
}

// u2fAuthenticate is U2F_AUTHENTICATE (U2F raw messages section 5).
func (a *Authenticator) u2fAuthenticate(ctx context.Context, control byte, data []byte) []byte {
	if len(data) < 65 || len(data) != 65+int(data[64]) {
		return swWrongLength
	}
	challenge, appID, handle := data[:32], data[32:64], data[65:]
	cred, err := a.u2fCredential(appID, handle)
	if err != nil || cred.Discoverable || cred.KeyBlob == nil || cred.CredProtect >= credProtectOptionalWithList ||
		cred.Algorithm != keystore.AlgES256 {
		// U2F knows only non-discoverable credentials without user
		// verification: a discoverable one (stored, or deleted: its ID
		// still opens) belongs to CTAP2 and its credential management,
		// and one protected above userVerificationOptional must not be
		// usable over CTAP1 (CTAP 2.1 section 12.1, credProtect); nor is
		// one whose key the store no longer holds (deleted, or reset).
		// U2F keys are ECDSA P-256 only (U2F raw messages sections 4.3
		// and 5.4): a CTAP2 credential of any other algorithm (EdDSA,
		// ES384, ES512, RS256, PS256; software or TPM) is not a U2F key
		// handle. Every P1, check-only included, answers as for a handle
		// not ours, before any touch is asked for.
		return swWrongData
	}
	// A key this authenticator cannot load (another TPM's, with the same
	// store) is not ours either: every P1 answers so, before any touch.
	key, err := a.loadKey(cred)
	if err != nil {
		return swWrongData
	}
	if pub, ok := key.Public().(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		return swWrongData // a provider's key that is not what its ID says
	}
	var flags byte
	switch control {
	case u2fCheckOnly:
		return swConditionsNotSatisfied // the key handle is ours (U2F section 5.1)
	case u2fEnforcePresence:
		if !a.u2fTakePresence(ctx, "U2F authenticate", u2fKey(U2FAuthenticate, data)) {
			return swConditionsNotSatisfied
		}
		flags = flagUP
	case u2fDontEnforce:
	default:
		return swWrongData
	}
	count, err := a.store.NextSignCount(handle)
	if err != nil {
		a.opts.Logger.Error("U2F counter", "err", err)
		return swWrongData
	}
	var ctr [4]byte
	binary.BigEndian.PutUint32(ctr[:], count)
	toSign := append(append([]byte(nil), appID...), flags)
	toSign = append(toSign, ctr[:]...)
	toSign = append(toSign, challenge...)
	sig, err := key.Sign(toSign)
	if err != nil {
		a.opts.Logger.Error("U2F signature", "err", err)
		return swWrongData
	}
	out := append([]byte{flags}, ctr[:]...)
	out = append(out, sig...)
	a.emit(CredentialAsserted{RPIDHash: [32]byte(appID), CredentialID: append([]byte(nil), handle...), SignCount: count,
		UserPresent: flags&flagUP != 0, U2F: true})
	return append(out, swNoError...)
}
