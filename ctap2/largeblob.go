package ctap2

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
)

// largeBlobsRequest is the authenticatorLargeBlobs parameter map (CTAP 2.1
// section 6.10.2).
type largeBlobsRequest struct {
	Get               *uint64 `cbor:"1,keyasint,omitempty"`
	Set               []byte  `cbor:"2,keyasint,omitempty"`
	Offset            *uint64 `cbor:"3,keyasint,omitempty"`
	Length            *uint64 `cbor:"4,keyasint,omitempty"`
	PinUvAuthParam    []byte  `cbor:"5,keyasint,omitempty"`
	PinUvAuthProtocol *uint64 `cbor:"6,keyasint,omitempty"`
}

type largeBlobsResponse struct {
	Config []byte `cbor:"1,keyasint"`
}

// largeBlobWrite is a serialized array being written in fragments.
type largeBlobWrite struct {
	buf            []byte
	expectedLength uint64
	nextOffset     uint64
}

// emptyLargeBlobArray is the initial serialized large-blob array: an empty
// CBOR array and its truncated SHA-256 (CTAP 2.1 section 6.10.2).
func emptyLargeBlobArray() []byte {
	arr := []byte{0x80}
	h := sha256.Sum256(arr)
	return append(arr, h[:16]...)
}

// maxFragmentLength is how much of the array one message may carry.
func (a *Authenticator) maxFragmentLength() uint64 { return uint64(a.opts.MaxMsgSize - 64) }

// largeBlobs is authenticatorLargeBlobs (CTAP 2.1 section 6.10).
func (a *Authenticator) largeBlobs(ctx context.Context, params []byte) (any, error) {
	var req largeBlobsRequest
	if err := decodeParams(params, &req); err != nil {
		return nil, err
	}
	if req.Offset == nil {
		return nil, ErrMissingParameter
	}
	if (req.Get == nil) == (req.Set == nil) {
		return nil, ErrInvalidParameter
	}
	if req.Get != nil {
		if req.Length != nil {
			return nil, ErrInvalidParameter
		}
		if *req.Get > a.maxFragmentLength() {
			return nil, ErrInvalidLength
		}
		arr, err := a.largeBlobArray()
		if err != nil {
			return nil, err
		}
		if *req.Offset > uint64(len(arr)) {
			return nil, ErrInvalidParameter
		}
		end := min(*req.Offset+*req.Get, uint64(len(arr)))
		return largeBlobsResponse{Config: arr[*req.Offset:end]}, nil
	}
	return nil, a.largeBlobSet(&req)
}

func (a *Authenticator) largeBlobArray() ([]byte, error) {
	arr, err := a.store.LargeBlobArray()
	if err != nil {
		return nil, fmt.Errorf("reading large-blob array: %w", err)
	}
	if arr == nil {
		arr = emptyLargeBlobArray()
	}
	return arr, nil
}

// largeBlobSet writes one fragment (CTAP 2.1 section 6.10.2, set).
func (a *Authenticator) largeBlobSet(req *largeBlobsRequest) error {
	if uint64(len(req.Set)) > a.maxFragmentLength() {
		return ErrInvalidLength
	}
	offset := *req.Offset
	if offset == 0 {
		if req.Length == nil {
			return ErrInvalidParameter
		}
		if *req.Length > uint64(a.maxLargeBlobArray()) {
			return ErrLargeBlobStorageFull
		}
		if *req.Length < 17 {
			return ErrInvalidParameter
		}
		a.volatile.lb = &largeBlobWrite{expectedLength: *req.Length}
	} else if req.Length != nil {
		return ErrInvalidParameter
	}
	w := a.volatile.lb
	if w == nil || offset != w.nextOffset {
		return ErrInvalidSeq
	}
	if err := a.authorizeManagement(req.PinUvAuthProtocol, req.PinUvAuthParam, LargeBlobAuthMessage(offset, req.Set), PermLargeBlobWrite); err != nil {
		return err
	}
	if offset+uint64(len(req.Set)) > w.expectedLength {
		return ErrInvalidParameter
	}
	w.buf = append(w.buf, req.Set...)
	w.nextOffset += uint64(len(req.Set))
	if w.nextOffset < w.expectedLength {
		return nil
	}
	a.volatile.lb = nil
	body, check := w.buf[:len(w.buf)-16], w.buf[len(w.buf)-16:]
	h := sha256.Sum256(body)
	if !bytes.Equal(h[:16], check) {
		return ErrIntegrityFailure
	}
	if err := a.store.SetLargeBlobArray(w.buf); err != nil {
		return fmt.Errorf("storing large-blob array: %w", err)
	}
	return nil
}
