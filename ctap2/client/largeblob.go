package client

import (
	"context"
	"errors"
	"fmt"

	"github.com/vkey-dev/vkey/ctap2"
)

// largeBlobsRequest is the authenticatorLargeBlobs parameter map (CTAP 2.1
// section 6.10.2).
type largeBlobsRequest struct {
	Get               *uint64 `cbor:"1,keyasint,omitempty"`
	Set               []byte  `cbor:"2,keyasint,omitempty"`
	Offset            uint64  `cbor:"3,keyasint"`
	Length            *uint64 `cbor:"4,keyasint,omitempty"`
	PinUvAuthParam    []byte  `cbor:"5,keyasint,omitempty"`
	PinUvAuthProtocol *uint64 `cbor:"6,keyasint,omitempty"`
}

type largeBlobsResponse struct {
	Config []byte `cbor:"1,keyasint"`
}

// ErrNoLargeBlob is returned when no entry of the large-blob array opens
// with the given largeBlobKey.
var ErrNoLargeBlob = errors.New("no large blob for this credential")

// fragmentSize is how much of the array one message carries:
// maxMsgSize - 64 (CTAP 2.1 section 6.10.2), maxMsgSize defaulting to 1024.
func (c *Client) fragmentSize(ctx context.Context) (uint64, error) {
	info, err := c.GetInfo(ctx)
	if err != nil {
		return 0, err
	}
	max := info.MaxMsgSize
	if max == 0 {
		max = 1024
	}
	if max <= 64 {
		return 0, fmt.Errorf("authenticator maxMsgSize %d is too small for large blobs", max)
	}
	return max - 64, nil
}

// LargeBlobArray reads the whole serialized large-blob array (CBOR array
// followed by its truncated SHA-256).
func (c *Client) LargeBlobArray(ctx context.Context) ([]byte, error) {
	frag, err := c.fragmentSize(ctx)
	if err != nil {
		return nil, err
	}
	var out []byte
	for {
		req := largeBlobsRequest{Get: &frag, Offset: uint64(len(out))}
		var resp largeBlobsResponse
		if err := c.Call(ctx, ctap2.CmdLargeBlobs, req, &resp); err != nil {
			return nil, fmt.Errorf("largeBlobs get: %w", err)
		}
		out = append(out, resp.Config...)
		if uint64(len(resp.Config)) < frag {
			return out, nil
		}
		if len(out) > 1<<24 {
			return nil, errors.New("largeBlobs get: array larger than 16 MiB")
		}
	}
}

// WriteLargeBlobArray replaces the serialized large-blob array. tok needs
// the lbw permission (nil on a key without PIN and with alwaysUv off).
func (c *Client) WriteLargeBlobArray(ctx context.Context, tok *Token, arr []byte) error {
	frag, err := c.fragmentSize(ctx)
	if err != nil {
		return err
	}
	total := uint64(len(arr))
	for off := uint64(0); off < total; off += frag {
		chunk := arr[off:min(off+frag, total)]
		req := largeBlobsRequest{Set: chunk, Offset: off}
		if off == 0 {
			req.Length = &total
		}
		if tok != nil {
			req.PinUvAuthProtocol = tok.Version()
			req.PinUvAuthParam = tok.Param(ctap2.LargeBlobAuthMessage(off, chunk))
		}
		if err := c.Call(ctx, ctap2.CmdLargeBlobs, req, nil); err != nil {
			return fmt.Errorf("largeBlobs set at offset %d: %w", off, err)
		}
	}
	return nil
}

// LargeBlob returns the large blob stored for largeBlobKey key, or
// ErrNoLargeBlob.
func (c *Client) LargeBlob(ctx context.Context, key []byte) ([]byte, error) {
	arr, err := c.LargeBlobArray(ctx)
	if err != nil {
		return nil, err
	}
	for _, e := range ctap2.ParseLargeBlobArray(arr) {
		if data, ok := e.Open(key); ok {
			return data, nil
		}
	}
	return nil, ErrNoLargeBlob
}

// PutLargeBlob stores data as the large blob of largeBlobKey key,
// replacing the one it had.
func (c *Client) PutLargeBlob(ctx context.Context, tok *Token, key, data []byte) error {
	arr, err := c.LargeBlobArray(ctx)
	if err != nil {
		return err
	}
	entries, _ := withoutKey(ctap2.ParseLargeBlobArray(arr), key)
	e, err := ctap2.SealLargeBlob(key, data)
	if err != nil {
		return fmt.Errorf("sealing large blob: %w", err)
	}
	out, err := ctap2.EncodeLargeBlobArray(append(entries, e))
	if err != nil {
		return err
	}
	return c.WriteLargeBlobArray(ctx, tok, out)
}

// DeleteLargeBlob removes the large blob of largeBlobKey key, or returns
// ErrNoLargeBlob.
func (c *Client) DeleteLargeBlob(ctx context.Context, tok *Token, key []byte) error {
	arr, err := c.LargeBlobArray(ctx)
	if err != nil {
		return err
	}
	entries, found := withoutKey(ctap2.ParseLargeBlobArray(arr), key)
	if !found {
		return ErrNoLargeBlob
	}
	out, err := ctap2.EncodeLargeBlobArray(entries)
	if err != nil {
		return err
	}
	return c.WriteLargeBlobArray(ctx, tok, out)
}

func withoutKey(entries []ctap2.LargeBlobEntry, key []byte) ([]ctap2.LargeBlobEntry, bool) {
	out := entries[:0:0]
	found := false
	for _, e := range entries {
		if _, ok := e.Open(key); ok {
			found = true
			continue
		}
		out = append(out, e)
	}
	return out, found
}
