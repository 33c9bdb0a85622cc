package ctap2

import (
	"errors"

	"github.com/fxamacker/cbor/v2"
)

// codec holds the CBOR modes of CTAP2's canonical form (CTAP 2.1 section 8).
type codec struct {
	enc cbor.EncMode
	dec cbor.DecMode
}

func newCodec() codec {
	enc, err := cbor.CTAP2EncOptions().EncMode()
	if err != nil {
		panic("ctap2: CTAP2 CBOR encoding options rejected: " + err.Error())
	}
	dec, err := cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		TagsMd:           cbor.TagsForbidden,
		MaxNestedLevels:  8,
		MaxArrayElements: 1024,
		MaxMapPairs:      256,
		DefaultMapType:   nil,
		UTF8:             cbor.UTF8RejectInvalid,
	}.DecMode()
	if err != nil {
		panic("ctap2: CBOR decoding options rejected: " + err.Error())
	}
	return codec{enc: enc, dec: dec}
}

// defaultCodec is immutable after package initialisation.
var defaultCodec = newCodec()

// Marshal encodes v in CTAP2 canonical CBOR.
func Marshal(v any) ([]byte, error) { return defaultCodec.enc.Marshal(v) }

// Unmarshal decodes CTAP2 CBOR into v, mapping failures to the status code
// the spec names: a type mismatch is CTAP2_ERR_CBOR_UNEXPECTED_TYPE, any
// other malformed input CTAP2_ERR_INVALID_CBOR.
func Unmarshal(data []byte, v any) error {
	if err := defaultCodec.dec.Unmarshal(data, v); err != nil {
		return cborStatus(err)
	}
	return nil
}

func cborStatus(err error) Status {
	var typeErr *cbor.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return ErrCBORUnexpectedType
	}
	return ErrInvalidCBOR
}
