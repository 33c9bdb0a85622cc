package keystore

import (
	"bytes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
)

// The format vkey used before the transactional store: one encrypted CBOR
// document (state.vkey) rewritten whole on every change. It is only read
// now, to convert a state once (see migrateLegacy).

// stateMagic opens every legacy state file; legacyContainerVersion is the
// version of its binary container, legacyDocVersion that of the CBOR
// document inside.
var stateMagic = [8]byte{'V', 'K', 'E', 'Y', 'S', 'T', 'A', 'T'}

const (
	legacyContainerVersion = 1
	legacyDocVersion       = 1
	gcmNonceSize           = 12
	stateHeaderSize        = len(stateMagic) + 2 + gcmNonceSize
)

// counterRec is the legacy persisted form of one signature counter: the
// SHA-256 of the credential ID and the largest value that may have been
// handed out.
type counterRec struct {
	Key      []byte `cbor:"1,keyasint"`
	Reserved uint32 `cbor:"2,keyasint"`
}

// stateDoc is the CBOR document inside a legacy state file.
type stateDoc struct {
	Version     int           `cbor:"1,keyasint"`
	Identity    *Identity     `cbor:"2,keyasint,omitempty"`
	Credentials []*Credential `cbor:"3,keyasint,omitempty"`
	Counters    []counterRec  `cbor:"4,keyasint,omitempty"`
	PIN         PINState      `cbor:"5,keyasint"`
	Config      Config        `cbor:"6,keyasint"`
	LargeBlob   []byte        `cbor:"7,keyasint,omitempty"`
}

// decryptLegacy opens a legacy state file with aead.
func decryptLegacy(aead cipher.AEAD, data []byte) (*stateDoc, error) {
	if len(data) < stateHeaderSize+aead.Overhead() {
		return nil, errors.New("file too short")
	}
	if !bytes.Equal(data[:len(stateMagic)], stateMagic[:]) {
		return nil, errors.New("not a vkey state file")
	}
	if v := binary.BigEndian.Uint16(data[len(stateMagic):]); v != legacyContainerVersion {
		return nil, fmt.Errorf("unknown container version %d", v)
	}
	header := data[:stateHeaderSize]
	nonce := header[len(stateMagic)+2:]
	plain, err := aead.Open(nil, nonce, data[stateHeaderSize:], header)
	if err != nil {
		return nil, fmt.Errorf("decrypt: %w", err)
	}
	defer clear(plain)
	dm, err := decMode()
	if err != nil {
		return nil, err
	}
	var doc stateDoc
	if err := dm.Unmarshal(plain, &doc); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	if doc.Version != legacyDocVersion {
		return nil, fmt.Errorf("state format version %d is not one this vkey understands (%d)", doc.Version, legacyDocVersion)
	}
	for _, c := range doc.Credentials {
		if c == nil || len(c.ID) == 0 {
			return nil, errors.New("empty credential")
		}
	}
	for _, r := range doc.Counters {
		if len(r.Key) != 32 {
			return nil, errors.New("bad counter key")
		}
	}
	return &doc, nil
}
