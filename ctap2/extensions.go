package ctap2

import "github.com/fxamacker/cbor/v2"

// Authenticator extension inputs (CTAP 2.1 section 12, CTAP 2.2 section 12)
// as typed values. On the wire each is a map keyed by extension identifier
// (makeCredential parameter 0x06, getAssertion parameter 0x04); these types
// encode and decode that map, so callers never handle raw CBOR. Decoding
// never fails on a value of the wrong type: it keeps the first such status
// for the command to report at the step where it processes its extensions,
// as it did when it read the map itself.

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
	if e.HMACSecret {
		m["hmac-secret"] = true
	}
	if e.HMACSecretMC != nil {
		m["hmac-secret-mc"] = e.HMACSecretMC
	}
	if e.CredBlob != nil {
		m["credBlob"] = e.CredBlob
	}
	if e.LargeBlobKey {
		m["largeBlobKey"] = true
	}
	if e.MinPINLength {
		m["minPinLength"] = true
	}
	if e.ThirdPartyPayment {
		m["thirdPartyPayment"] = true
	}
	return m
}

// UnmarshalCBOR decodes the extensions map. Only a value that is not a
// map with text keys fails; a malformed input is kept for the command.
func (e *MakeCredentialExtensions) UnmarshalCBOR(data []byte) error {
	d, err := newExtensionDecoder(data)
	if err != nil {
		return err
	}
	*e = MakeCredentialExtensions{}
	var level uint64
	if d.take("credProtect", &level) && level >= 1 && level <= 3 {
		e.CredProtect = uint8(level)
	}
	d.take("hmac-secret", &e.HMACSecret)
	// hmac-secret-mc is decoded only when it is used (with hmac-secret),
	// so a malformed one is otherwise ignored.
	e.HMACSecretMC = d.hmacSecret("hmac-secret-mc")
	if d.take("credBlob", &e.CredBlob) && e.CredBlob == nil {
		e.CredBlob = []byte{}
	}
	d.largeBlobKey(&e.LargeBlobKey)
	d.take("minPinLength", &e.MinPINLength)
	d.take("thirdPartyPayment", &e.ThirdPartyPayment)
	e.Other, e.invalid = d.rest(), d.err
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
	if e.CredBlob {
		m["credBlob"] = true
	}
	if e.LargeBlobKey {
		m["largeBlobKey"] = true
	}
	if e.ThirdPartyPayment {
		m["thirdPartyPayment"] = true
	}
	return m
}

// UnmarshalCBOR decodes the extensions map. Only a value that is not a
// map with text keys fails; a malformed input is kept for the command.
func (e *GetAssertionExtensions) UnmarshalCBOR(data []byte) error {
	d, err := newExtensionDecoder(data)
	if err != nil {
		return err
	}
	*e = GetAssertionExtensions{}
	e.HMACSecret = d.hmacSecret("hmac-secret")
	if e.HMACSecret != nil && e.HMACSecret.invalid != nil && d.err == nil {
		d.err = e.HMACSecret.invalid
	}
	d.take("credBlob", &e.CredBlob)
	d.largeBlobKey(&e.LargeBlobKey)
	d.take("thirdPartyPayment", &e.ThirdPartyPayment)
	e.Other, e.invalid = d.rest(), d.err
	return nil
}

// otherInputs copies Other into a map to encode.
func otherInputs(other map[string][]byte) map[string]any {
	m := make(map[string]any, len(other))
	for name, raw := range other {
		m[name] = cbor.RawMessage(raw)
	}
	return m
}

// extensionDecoder takes the inputs out of a decoded extensions map one by
// one, keeping the status of the first that does not decode.
type extensionDecoder struct {
	m   map[string]cbor.RawMessage
	err error
}

// newExtensionDecoder decodes the map. Its error is the decoder's own, so
// that the request's decoding maps it to a status like any other member's
// (a value that is not a map with text keys is
// CTAP2_ERR_CBOR_UNEXPECTED_TYPE).
func newExtensionDecoder(data []byte) (*extensionDecoder, error) {
	d := &extensionDecoder{}
	if err := defaultCodec.dec.Unmarshal(data, &d.m); err != nil {
		return nil, err
	}
	return d, nil
}

// take decodes input name into v and reports whether it was present.
func (d *extensionDecoder) take(name string, v any) bool {
	raw, ok := d.m[name]
	if !ok {
		return false
	}
	delete(d.m, name)
	if err := Unmarshal(raw, v); err != nil && d.err == nil {
		d.err = err
	}
	return true
}

// largeBlobKey decodes the largeBlobKey input, whose only valid value is
// true (CTAP 2.1 section 12.3): anything else is CTAP2_ERR_INVALID_OPTION.
func (d *extensionDecoder) largeBlobKey(v *bool) {
	if d.take("largeBlobKey", v) && !*v && d.err == nil {
		d.err = ErrInvalidOption
	}
}

// hmacSecret decodes an hmac-secret input map, keeping its status inside
// when it does not decode.
func (d *extensionDecoder) hmacSecret(name string) *HMACSecretInput {
	raw, ok := d.m[name]
	if !ok {
		return nil
	}
	delete(d.m, name)
	var in HMACSecretInput
	if err := Unmarshal(raw, &in); err != nil {
		return &HMACSecretInput{invalid: err}
	}
	return &in
}

// rest is what the authenticator does not implement.
func (d *extensionDecoder) rest() map[string][]byte {
	if len(d.m) == 0 {
		return nil
	}
	other := make(map[string][]byte, len(d.m))
	for name, raw := range d.m {
		other[name] = raw
	}
	return other
}
