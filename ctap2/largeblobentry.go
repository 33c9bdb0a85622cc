package ctap2

import (
	"bytes"
	"compress/flate"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
)

// The large-blob array's entries (CTAP 2.1 section 6.10.3) are the
// platform's business: the authenticator stores the serialized array
// without looking inside. They are defined here, once, for the platform
// side (package client) and for the control API, which adds a credential
// together with its large blob.

// LargeBlobEntry is one element of the large-blob array: a blob compressed
// with DEFLATE and encrypted with AES-256-GCM under a credential's
// largeBlobKey.
type LargeBlobEntry struct {
	Ciphertext []byte `cbor:"1,keyasint"`
	Nonce      []byte `cbor:"2,keyasint"`
	OrigSize   uint64 `cbor:"3,keyasint"`
}

// maxLargeBlobOrigSize bounds decompression (the whole array is at most a
// few KiB; DEFLATE expands at most ~1032 times).
const maxLargeBlobOrigSize = 1 << 24

// largeBlobAD is the associated data of an entry: "blob" || uint64LE(origSize).
func largeBlobAD(origSize uint64) []byte {
	return binary.LittleEndian.AppendUint64([]byte("blob"), origSize)
}

func largeBlobAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("largeBlobKey: %w", err)
	}
	return cipher.NewGCM(block)
}

// SealLargeBlob compresses data with DEFLATE and encrypts it under key.
func SealLargeBlob(key, data []byte) (LargeBlobEntry, error) {
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, flate.BestCompression)
	if err != nil {
		return LargeBlobEntry{}, fmt.Errorf("compressing large blob: %w", err)
	}
	if _, err := w.Write(data); err != nil {
		return LargeBlobEntry{}, fmt.Errorf("compressing large blob: %w", err)
	}
	if err := w.Close(); err != nil {
		return LargeBlobEntry{}, fmt.Errorf("compressing large blob: %w", err)
	}
	aead, err := largeBlobAEAD(key)
	if err != nil {
		return LargeBlobEntry{}, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return LargeBlobEntry{}, fmt.Errorf("large blob nonce: %w", err)
	}
	size := uint64(len(data))
	return LargeBlobEntry{Ciphertext: aead.Seal(nil, nonce, buf.Bytes(), largeBlobAD(size)), Nonce: nonce, OrigSize: size}, nil
}

// Open decrypts the entry with key; ok is false when it is not key's.
func (e LargeBlobEntry) Open(key []byte) (data []byte, ok bool) {
	if len(e.Nonce) != 12 || e.OrigSize > maxLargeBlobOrigSize {
		return nil, false
	}
	aead, err := largeBlobAEAD(key)
	if err != nil {
		return nil, false
	}
	compressed, err := aead.Open(nil, e.Nonce, e.Ciphertext, largeBlobAD(e.OrigSize))
	if err != nil {
		return nil, false
	}
	out, err := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(compressed)), int64(e.OrigSize)+1))
	if err != nil || uint64(len(out)) != e.OrigSize {
		return nil, false
	}
	return out, true
}

// ParseLargeBlobArray splits a serialized array into its entries. An array
// whose check value is wrong is treated as empty, as CTAP 2.1 section
// 6.10.4 tells platforms to.
func ParseLargeBlobArray(arr []byte) []LargeBlobEntry {
	if len(arr) < 17 {
		return nil
	}
	body, check := arr[:len(arr)-16], arr[len(arr)-16:]
	h := sha256.Sum256(body)
	if !bytes.Equal(h[:16], check) {
		return nil
	}
	var entries []LargeBlobEntry
	if err := Unmarshal(body, &entries); err != nil {
		return nil
	}
	return entries
}

// EncodeLargeBlobArray serializes entries with their check value.
func EncodeLargeBlobArray(entries []LargeBlobEntry) ([]byte, error) {
	if entries == nil {
		entries = []LargeBlobEntry{}
	}
	body, err := Marshal(entries)
	if err != nil {
		return nil, fmt.Errorf("encoding large-blob array: %w", err)
	}
	h := sha256.Sum256(body)
	return append(body, h[:16]...), nil
}
