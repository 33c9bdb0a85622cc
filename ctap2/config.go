package ctap2

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
	"github.com/vkey-dev/vkey/keystore"
)

// authenticatorConfig subcommands (CTAP 2.1 section 6.11).
const (
	ConfigEnableEnterpriseAttestation = 0x01 // enableEnterpriseAttestation
	ConfigToggleAlwaysUV              = 0x02 // toggleAlwaysUv
	ConfigSetMinPINLength             = 0x03 // setMinPINLength
)

// maxRPIDsForSetMinPINLength is how many RP IDs may learn the minimum PIN
// length (CTAP 2.1 section 6.4, maxRPIDsForSetMinPINLength).
const maxRPIDsForSetMinPINLength = 8

// subcommandRequest is the request map that authenticatorConfig and
// authenticatorCredentialManagement share (CTAP 2.1 sections 6.11 and 6.8).
type subcommandRequest struct {
	SubCommand        *uint64         `cbor:"1,keyasint,omitempty"`
	SubCommandParams  cbor.RawMessage `cbor:"2,keyasint,omitempty"`
	PinUvAuthProtocol *uint64         `cbor:"3,keyasint,omitempty"`
	PinUvAuthParam    []byte          `cbor:"4,keyasint,omitempty"`
}

// decodeSubcommand decodes the request map of authenticatorConfig or
// authenticatorCredentialManagement; a missing subCommand is
// CTAP2_ERR_MISSING_PARAMETER.
func decodeSubcommand(params []byte) (*subcommandRequest, uint64, error) {
	var req subcommandRequest
	if err := decodeParams(params, &req); err != nil {
		return nil, 0, err
	}
	if req.SubCommand == nil {
		return nil, 0, ErrMissingParameter
	}
	return &req, *req.SubCommand, nil
}

type setMinPINLengthParams struct {
	NewMinPINLength   *uint64  `cbor:"1,keyasint,omitempty"`
	MinPINLengthRPIDs []string `cbor:"2,keyasint,omitempty"`
	ForceChangePIN    *bool    `cbor:"3,keyasint,omitempty"`
}

// authPrefix is the 32 bytes of 0xff that begin the messages authenticated
// for config and largeBlobs (CTAP 2.1 sections 6.10.2 and 6.11.1).
func authPrefix() []byte {
	b := make([]byte, 32)
	for i := range b {
		b[i] = 0xff
	}
	return b
}

// ConfigAuthMessage is what a pinUvAuthParam of authenticatorConfig
// authenticates: 32×0xff || 0x0d || uint8(subCommand) || subCommandParams
// (CTAP 2.1 section 6.11.1). The platform signs it; the key verifies it.
func ConfigAuthMessage(subCommand uint64, params []byte) []byte {
	msg := append(authPrefix(), CmdConfig, byte(subCommand))
	return append(msg, params...)
}

// LargeBlobAuthMessage is what the pinUvAuthParam of a largeBlobs set
// authenticates: 32×0xff || h'0c00' || uint32LE(offset) || SHA-256(fragment)
// (CTAP 2.1 section 6.10.2).
func LargeBlobAuthMessage(offset uint64, fragment []byte) []byte {
	digest := sha256.Sum256(fragment)
	msg := append(authPrefix(), CmdLargeBlobs, 0x00)
	msg = binary.LittleEndian.AppendUint32(msg, uint32(offset))
	return append(msg, digest[:]...)
}

// CredMgmtAuthMessage is what a pinUvAuthParam of
// authenticatorCredentialManagement authenticates: uint8(subCommand) ||
// subCommandParams (CTAP 2.1 section 6.8).
func CredMgmtAuthMessage(subCommand uint64, params []byte) []byte {
	return append([]byte{byte(subCommand)}, params...)
}

// authorizeManagement checks the pinUvAuthParam of a command that must be
// authorized once a PIN is set or alwaysUv is on (config, largeBlobs set).
func (a *Authenticator) authorizeManagement(protocol *uint64, param, message []byte, perm Permission) error {
	if param == nil {
		set, err := a.pinSet()
		if err != nil {
			return err
		}
		cfg, err := a.store.Config()
		if err != nil {
			return fmt.Errorf("reading config: %w", err)
		}
		if set || cfg.AlwaysUV {
			return ErrPUATRequired
		}
		return nil
	}
	return a.verifyToken(protocol, param, message, perm, "")
}

// config is authenticatorConfig (CTAP 2.1 section 6.11).
func (a *Authenticator) config(ctx context.Context, params []byte) (any, error) {
	req, sub, err := decodeSubcommand(params)
	if err != nil {
		return nil, err
	}
	if sub != ConfigEnableEnterpriseAttestation && sub != ConfigToggleAlwaysUV && sub != ConfigSetMinPINLength {
		return nil, ErrInvalidSubcommand
	}
	if err := a.authorizeManagement(req.PinUvAuthProtocol, req.PinUvAuthParam, ConfigAuthMessage(sub, req.SubCommandParams), PermAuthenticatorCfg); err != nil {
		return nil, err
	}
	cfg, err := a.store.Config()
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	switch sub {
	case ConfigEnableEnterpriseAttestation:
		cfg.EnterpriseAttestation = true
	case ConfigToggleAlwaysUV:
		cfg.AlwaysUV = !cfg.AlwaysUV
	case ConfigSetMinPINLength:
		if err := a.setMinPINLength(&cfg, req.SubCommandParams); err != nil {
			return nil, err
		}
	}
	if err := a.store.SetConfig(cfg); err != nil {
		return nil, fmt.Errorf("storing config: %w", err)
	}
	return nil, nil
}

// setMinPINLength is the setMinPINLength subcommand (CTAP 2.1 section 6.11.4).
func (a *Authenticator) setMinPINLength(cfg *keystore.Config, raw cbor.RawMessage) error {
	var p setMinPINLengthParams
	if len(raw) > 0 {
		if err := Unmarshal(raw, &p); err != nil {
			return err
		}
	}
	current := a.minPINLength()
	newMin := current
	if p.NewMinPINLength != nil {
		if *p.NewMinPINLength < uint64(current) || *p.NewMinPINLength > maxPINBytes {
			return ErrPINPolicyViolation
		}
		newMin = int(*p.NewMinPINLength)
	}
	if len(p.MinPINLengthRPIDs) > a.maxRPIDsForSetMinPINLength() {
		return ErrPINPolicyViolation
	}
	for _, id := range p.MinPINLengthRPIDs {
		if !utf8.ValidString(id) {
			return ErrInvalidParameter
		}
	}
	st, err := a.store.PINState()
	if err != nil {
		return fmt.Errorf("reading PIN state: %w", err)
	}
	force := p.ForceChangePIN != nil && *p.ForceChangePIN
	if force && st.Hash == nil {
		return ErrPINNotSet
	}
	if st.Hash != nil && (force || st.CodePoints < newMin) {
		st.ForceChange = true
		if err := a.store.SetPINState(st); err != nil {
			return fmt.Errorf("storing PIN state: %w", err)
		}
	}
	cfg.MinPINLength = newMin
	if p.MinPINLengthRPIDs != nil {
		cfg.MinPINLengthRPIDs = p.MinPINLengthRPIDs
	}
	return nil
}
