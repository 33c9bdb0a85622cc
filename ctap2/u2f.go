package ctap2

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/binary"
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

// U2F authentication control bytes, and how long presence stays usable.
const (
	u2fCheckOnly       = 0x07
	u2fEnforcePresence = 0x03
	u2fDontEnforce     = 0x08

	// u2fPresenceValidity is how long a touch given for a U2F request
	// stays usable: clients poll with SW_CONDITIONS_NOT_SATISFIED answers.
	u2fPresenceValidity = 10 * time.Second
)

// U2F status words.
var (
	swNoError                = []byte{0x90, 0x00}
	swConditionsNotSatisfied = []byte{0x69, 0x85}
	swWrongData              = []byte{0x6A, 0x80}
	swWrongLength            = []byte{0x67, 0x00}
	swClaNotSupported        = []byte{0x6E, 0x00}
	swInsNotSupported        = []byte{0x6D, 0x00}
)

// u2fPresence turns the blocking Presence into U2F's polling model: the
// first request starts asking the user in the background and answers
// SW_CONDITIONS_NOT_SATISFIED; a later request within u2fPresenceValidity
// of the touch consumes it.
type u2fPresence struct {
	mu      sync.Mutex
	asking  bool
	granted time.Time
}

// take reports whether a touch is available, and otherwise starts asking.
func (a *Authenticator) u2fTakePresence(rpHash []byte) bool {
	p := &a.u2f
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.granted.IsZero() && a.opts.Now().Sub(p.granted) < u2fPresenceValidity {
		p.granted = time.Time{}
		return true
	}
	if !p.asking {
		p.asking = true
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := a.opts.Presence.Request(ctx, PresenceRequest{Command: "U2F"})
			p.mu.Lock()
			defer p.mu.Unlock()
			p.asking = false
			if err == nil {
				p.granted = a.opts.Now()
			}
		}()
	}
	return false
}

// ParseAPDU splits a command APDU in short or extended length encoding
// (ISO 7816-4) into its header and data; ok is false when the lengths do
// not add up.
func ParseAPDU(apdu []byte) (cla, ins, p1 byte, data []byte, ok bool) {
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
	cla, ins, p1, data, ok := ParseAPDU(apdu)
	if !ok {
		return swWrongLength
	}
	if cla != 0 {
		return swClaNotSupported
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.volatile.next = nil
	switch ins {
	case U2FVersion:
		if len(data) != 0 {
			return swWrongLength
		}
		return append([]byte("U2F_V2"), swNoError...)
	case U2FRegister:
		return a.u2fRegister(data)
	case U2FAuthenticate:
		return a.u2fAuthenticate(p1, data)
	}
	return swInsNotSupported
}

// u2fRegister is U2F_REGISTER (U2F raw messages section 4).
func (a *Authenticator) u2fRegister(data []byte) []byte {
	if len(data) != 64 {
		return swWrongLength
	}
	challenge, appID := data[:32], data[32:]
	if !a.u2fTakePresence(appID) {
		return swConditionsNotSatisfied
	}
	blob, key, err := a.opts.SoftwareKeys.Generate(keystore.AlgES256)
	if err != nil {
		a.opts.Logger.Error("U2F key generation", "err", err)
		return swWrongData
	}
	pub, ok := key.Public().(*ecdsa.PublicKey)
	if !ok {
		return swWrongData
	}
	point, err := pub.Bytes()
	if err != nil {
		return swWrongData
	}
	cred := &keystore.Credential{Algorithm: keystore.AlgES256, Provider: a.opts.SoftwareKeys.Name(), KeyBlob: blob}
	handle, err := sealCredentialID(a.wrapKey, appID, cred)
	if err != nil || len(handle) > 255 {
		a.opts.Logger.Error("U2F key handle", "err", err)
		return swWrongData
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
	return append(out, swNoError...)
}

// u2fAuthenticate is U2F_AUTHENTICATE (U2F raw messages section 5).
func (a *Authenticator) u2fAuthenticate(control byte, data []byte) []byte {
	if len(data) < 65 || len(data) != 65+int(data[64]) {
		return swWrongLength
	}
	challenge, appID, handle := data[:32], data[32:64], data[65:]
	cred, err := openCredentialIDHash(a.wrapKey, appID, handle)
	if err != nil {
		return swWrongData
	}
	var flags byte
	switch control {
	case u2fCheckOnly:
		return swConditionsNotSatisfied // the key handle is ours (U2F section 5.1)
	case u2fEnforcePresence:
		if !a.u2fTakePresence(appID) {
			return swConditionsNotSatisfied
		}
		flags = flagUP
	case u2fDontEnforce:
	default:
		return swWrongData
	}
	key, err := a.loadKey(cred)
	if err != nil {
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
		return swWrongData
	}
	out := append([]byte{flags}, ctr[:]...)
	out = append(out, sig...)
	return append(out, swNoError...)
}
