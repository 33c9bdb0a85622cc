package ctap2

import (
	"bytes"
	"cmp"
	"maps"
	"slices"
	"strings"

	"github.com/fxamacker/cbor/v2"
)

// Authenticator extension inputs (CTAP 2.1 section 12, CTAP 2.2 section 12)
// as typed values. On the wire each is a map keyed by extension identifier
// (makeCredential parameter 0x06, getAssertion parameter 0x04); these types
// encode and decode that map, so callers never handle raw CBOR. Decoding
// never fails on a value of the wrong type: it keeps the status of the
// first malformed input, in the order the request lists them, for the
// command to report at the step where it processes its extensions.

// HMACSecretInput is the hmac-secret input of getAssertion (CTAP 2.1
// section 12.5) and the hmac-secret-mc input of makeCredential (CTAP 2.2
// section 12.7): the platform's key agreement key, the salts encrypted
// under the shared secret and their authentication. ctap2/client's
// NewHMACSecret builds one.
type HMACSecretInput struct {
	KeyAgreement *COSEKeyAgreement `cbor:"1,keyasint"`
	SaltEnc      []byte            `cbor:"2,keyasint"`
	SaltAuth     []byte            `cbor:"3,keyasint"`
	// PinUvAuthProtocol is the PIN/UV protocol of the shared secret; nil
	// means protocol 1.
	PinUvAuthProtocol *uint64 `cbor:"4,keyasint,omitempty"`

	// invalid is the status of an input that did not decode.
	invalid error
}

// MakeCredentialExtensions are makeCredential's extension inputs, one
// field per extension this authenticator implements. The zero value sends
// none.
type MakeCredentialExtensions struct {
	// CredProtect is the credProtect level (CTAP 2.1 section 12.1): 1
	// userVerificationOptional, 2 userVerificationOptionalWithCredentialIDList,
	// 3 userVerificationRequired; 0 sends none. A level outside 1-3 decodes
	// as 0: the authenticator ignores it.
	CredProtect uint8
	// HMACSecret asks for an hmac-secret credential (section 12.5).
	HMACSecret bool
	// HMACSecretMC asks, with HMACSecret, for the hmac-secret output at
	// registration (CTAP 2.2 section 12.7).
	HMACSecretMC *HMACSecretInput
	// CredBlob is the credBlob to store (section 12.2); nil sends none.
	CredBlob []byte
	// LargeBlobKey asks for a largeBlobKey (section 12.3).
	LargeBlobKey bool
	// MinPINLength asks for the minimum PIN length in the output, for an
	// RP ID the key is configured to tell it to (section 12.4).
	MinPINLength bool
	// ThirdPartyPayment marks a payment credential (CTAP 2.2 section 12.9).
	ThirdPartyPayment bool
	// Other holds extensions without a field above, each value in CTAP2
	// CBOR: decoding puts there those this authenticator does not
	// implement, which it ignores (section 12). Encoding sends them too,
	// before the fields above (which win on the same identifier), so a
	// test can send a value no field can hold.
	Other map[string][]byte

	// invalid is the first status of an input that did not decode.
	invalid error
	// raw is the map decoded, for only.
	raw []byte
}

// GetAssertionExtensions are getAssertion's extension inputs, one field
// per extension this authenticator implements. The zero value sends none.
type GetAssertionExtensions struct {
	// HMACSecret asks for the hmac-secret output (CTAP 2.1 section 12.5).
	HMACSecret *HMACSecretInput
	// CredBlob asks for the stored credBlob (section 12.2).
	CredBlob bool
	// LargeBlobKey asks for the credential's largeBlobKey (section 12.3).
	LargeBlobKey bool
	// ThirdPartyPayment asks whether the credential is a payment one
	// (CTAP 2.2 section 12.9).
	ThirdPartyPayment bool
	// Other is as in MakeCredentialExtensions.
	Other map[string][]byte

	// invalid is the first status of an input that did not decode.
	invalid error
	// raw is the map decoded, for only.
	raw []byte
	// hmacSecretFirst says that no input before hmac-secret failed to
	// decode.
	hmacSecretFirst bool
}

// IsZero reports whether e sends no extension (the request then omits the
// parameter).
func (e MakeCredentialExtensions) IsZero() bool { return len(e.inputs()) == 0 }

// MarshalCBOR encodes the extensions map.
func (e MakeCredentialExtensions) MarshalCBOR() ([]byte, error) { return Marshal(e.inputs()) }

func (e MakeCredentialExtensions) inputs() map[string]any {
	m := otherInputs(e.Other)
	if e.CredProtect != 0 {
		m["credProtect"] = e.CredProtect
	}
	setTrue(m, "hmac-secret", e.HMACSecret)
	if e.HMACSecretMC != nil {
		m["hmac-secret-mc"] = e.HMACSecretMC
	}
	if e.CredBlob != nil {
		m["credBlob"] = e.CredBlob
	}
	setTrue(m, "largeBlobKey", e.LargeBlobKey)
	setTrue(m, "minPinLength", e.MinPINLength)
	setTrue(m, "thirdPartyPayment", e.ThirdPartyPayment)
	return m
}

// names lists, sorted, the extensions e holds a field for: the ones this
// key implements, never a name from Other.
func (e MakeCredentialExtensions) names() []string {
	e.Other = nil
	return slices.Sorted(maps.Keys(e.inputs()))
}

// UnmarshalCBOR decodes the extensions map. Only a value that is not a
// map with text keys fails; a malformed input is kept for the command.
func (e *MakeCredentialExtensions) UnmarshalCBOR(data []byte) error {
	return e.decode(data, nil)
}

// only is e as a key decodes it that implements only the extensions
// advertised names (those its getInfo lists): it ignores the others as
// extensions it does not support (CTAP 2.1 section 12), so it neither
// acts on them nor reports a malformed value of one, which it never
// parses. e must have been decoded (UnmarshalCBOR); nil advertised keeps
// every extension.
func (e *MakeCredentialExtensions) only(advertised func(name string) bool) *MakeCredentialExtensions {
	return reread(e, e.raw, advertised)
}

// decode decodes the extensions map, the extensions keep refuses going to
// Other unread (nil keeps all).
func (e *MakeCredentialExtensions) decode(data []byte, keep func(string) bool) error {
	d, err := newExtensionDecoder(data, keep)
	if err != nil {
		return err
	}
	*e = MakeCredentialExtensions{raw: bytes.Clone(data)}
	for _, name := range d.names {
		raw := d.m[name]
		switch name {
		case "credProtect":
			var level uint64
			if d.decode(raw, &level) && level >= 1 && level <= 3 {
				e.CredProtect = uint8(level)
			}
		case "hmac-secret":
			d.decode(raw, &e.HMACSecret)
		case "hmac-secret-mc":
			// Checked only when it is used (with hmac-secret), so a
			// malformed one is otherwise ignored.
			e.HMACSecretMC = decodeHMACSecretInput(raw)
		case "credBlob":
			if d.decode(raw, &e.CredBlob) && e.CredBlob == nil {
				e.CredBlob = []byte{}
			}
		case "largeBlobKey":
			d.largeBlobKey(raw, &e.LargeBlobKey)
		case "minPinLength":
			d.decode(raw, &e.MinPINLength)
		case "thirdPartyPayment":
			d.decode(raw, &e.ThirdPartyPayment)
		default:
			e.Other = addOther(e.Other, name, raw)
		}
	}
	e.Other = d.addIgnored(e.Other)
	e.invalid = d.err
	return nil
}

// IsZero reports whether e sends no extension (the request then omits the
// parameter).
func (e GetAssertionExtensions) IsZero() bool { return len(e.inputs()) == 0 }

// MarshalCBOR encodes the extensions map.
func (e GetAssertionExtensions) MarshalCBOR() ([]byte, error) { return Marshal(e.inputs()) }

func (e GetAssertionExtensions) inputs() map[string]any {
	m := otherInputs(e.Other)
	if e.HMACSecret != nil {
		m["hmac-secret"] = e.HMACSecret
	}
	setTrue(m, "credBlob", e.CredBlob)
	setTrue(m, "largeBlobKey", e.LargeBlobKey)
	setTrue(m, "thirdPartyPayment", e.ThirdPartyPayment)
	return m
}

// names is as MakeCredentialExtensions.names.
func (e GetAssertionExtensions) names() []string {
	e.Other = nil
	return slices.Sorted(maps.Keys(e.inputs()))
}

// UnmarshalCBOR decodes the extensions map. Only a value that is not a
// map with text keys fails; a malformed input is kept for the command.
func (e *GetAssertionExtensions) UnmarshalCBOR(data []byte) error {
	return e.decode(data, nil)
}

// only is as MakeCredentialExtensions.only.
func (e *GetAssertionExtensions) only(advertised func(name string) bool) *GetAssertionExtensions {
	return reread(e, e.raw, advertised)
}

// reread decodes raw, the extensions map e was decoded from, anew into a
// value of e's type, reading only the extensions keep accepts; it is e
// when keep or raw is nil.
func reread[T any, P interface {
	*T
	decode(data []byte, keep func(string) bool) error
}](e P, raw []byte, keep func(string) bool) P {
	if keep == nil || raw == nil {
		return e
	}
	out := P(new(T))
	if out.decode(raw, keep) != nil {
		return e // not reached: raw decoded before
	}
	return out
}

// decode is as MakeCredentialExtensions.decode.
func (e *GetAssertionExtensions) decode(data []byte, keep func(string) bool) error {
	d, err := newExtensionDecoder(data, keep)
	if err != nil {
		return err
	}
	*e = GetAssertionExtensions{raw: bytes.Clone(data)}
	for _, name := range d.names {
		raw := d.m[name]
		switch name {
		case "hmac-secret":
			// The input's checks against the key agreement come
			// before those of any malformed input after it.
			e.hmacSecretFirst = d.err == nil
			e.HMACSecret = decodeHMACSecretInput(raw)
			d.fail(e.HMACSecret.invalid)
		case "credBlob":
			d.decode(raw, &e.CredBlob)
		case "largeBlobKey":
			d.largeBlobKey(raw, &e.LargeBlobKey)
		case "thirdPartyPayment":
			d.decode(raw, &e.ThirdPartyPayment)
		default:
			e.Other = addOther(e.Other, name, raw)
		}
	}
	e.Other = d.addIgnored(e.Other)
	e.invalid = d.err
	return nil
}

// setTrue sets input name to true when set is: the only value a platform
// sends for these extensions.
func setTrue(m map[string]any, name string, set bool) {
	if set {
		m[name] = true
	}
}

// otherInputs copies Other into a map to encode.
func otherInputs(other map[string][]byte) map[string]any {
	m := make(map[string]any, len(other))
	for name, raw := range other {
		m[name] = cbor.RawMessage(raw)
	}
	return m
}

// addOther adds an extension the authenticator does not implement.
func addOther(other map[string][]byte, name string, raw []byte) map[string][]byte {
	if other == nil {
		other = map[string][]byte{}
	}
	other[name] = raw
	return other
}

// extensionDecoder decodes the inputs of an extensions map one by one,
// keeping the status of the first that does not decode.
type extensionDecoder struct {
	m map[string]cbor.RawMessage
	// names are m's keys in CTAP2 canonical order (CTAP 2.1 section 8:
	// shorter first, then bytewise), the order a conforming platform
	// sends them in: when several inputs are malformed, the first is
	// reported, as a key that reads the map in order would. Names the
	// decoder's keep function refuses are in ignored instead.
	names, ignored []string
	err            error
}

// newExtensionDecoder decodes the map. Its error is the decoder's own, so
// that the request's decoding maps it to a status like any other member's
// (a value that is not a map with text keys is
// CTAP2_ERR_CBOR_UNEXPECTED_TYPE).
// Names keep refuses (when it is not nil) are left unread.
func newExtensionDecoder(data []byte, keep func(string) bool) (*extensionDecoder, error) {
	d := &extensionDecoder{}
	if err := defaultCodec.dec.Unmarshal(data, &d.m); err != nil {
		return nil, err
	}
	d.names = slices.SortedFunc(maps.Keys(d.m), func(a, b string) int {
		return cmp.Or(cmp.Compare(len(a), len(b)), strings.Compare(a, b))
	})
	if keep != nil {
		d.names = slices.DeleteFunc(d.names, func(name string) bool {
			if keep(name) {
				return false
			}
			d.ignored = append(d.ignored, name)
			return true
		})
	}
	return d, nil
}

// addIgnored adds the extensions left unread to other.
func (d *extensionDecoder) addIgnored(other map[string][]byte) map[string][]byte {
	for _, name := range d.ignored {
		other = addOther(other, name, d.m[name])
	}
	return other
}

// fail records err unless an earlier input failed.
func (d *extensionDecoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

// decode decodes one input into v and reports whether it decoded.
func (d *extensionDecoder) decode(raw []byte, v any) bool {
	err := Unmarshal(raw, v)
	d.fail(err)
	return err == nil
}

// largeBlobKey decodes the largeBlobKey input, whose only valid value is
// true (CTAP 2.1 section 12.3): anything else is CTAP2_ERR_INVALID_OPTION.
func (d *extensionDecoder) largeBlobKey(raw []byte, v *bool) {
	if d.decode(raw, v) && !*v {
		d.fail(ErrInvalidOption)
	}
}

// decodeHMACSecretInput decodes an hmac-secret input map, keeping its
// status inside when it does not decode.
func decodeHMACSecretInput(raw []byte) *HMACSecretInput {
	var in HMACSecretInput
	if err := Unmarshal(raw, &in); err != nil {
		return &HMACSecretInput{invalid: err}
	}
	return &in
}

// outputNames lists, sorted, the extension outputs of out, with
// largeBlobKey when the response carries one (CTAP 2.1 section 12.3).
func outputNames(out map[string]any, largeBlobKey bool) []string {
	names := slices.Collect(maps.Keys(out))
	if largeBlobKey {
		names = append(names, "largeBlobKey")
	}
	slices.Sort(names)
	return names
}
