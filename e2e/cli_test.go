package e2e

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// Exit statuses of the vkey CLI (docs/cli.md).
const (
	exitError      = 1
	exitUsage      = 2
	exitPINInvalid = 3
	exitPINBlocked = 4
	exitNoDevice   = 5
	exitTimeout    = 6
)

// credsListJSON is what `vkey creds list --json` prints (docs/cli.md).
type credsListJSON struct {
	Existing    uint64 `json:"existing"`
	Remaining   uint64 `json:"remaining"`
	Credentials []struct {
		RPID            string `json:"rpId"`
		CredentialID    string `json:"credentialId"`
		UserID          string `json:"userId"`
		UserName        string `json:"userName"`
		UserDisplayName string `json:"userDisplayName"`
		Algorithm       string `json:"algorithm"`
		CredProtect     uint64 `json:"credProtect"`
		LargeBlobKey    bool   `json:"largeBlobKey"`
	} `json:"credentials"`
}

// infoJSON is the part of `vkey info --json` the tests read.
type infoJSON struct {
	Device         string          `json:"device"`
	Options        map[string]bool `json:"options"`
	MinPINLength   uint64          `json:"minPINLength"`
	ForcePINChange bool            `json:"forcePINChange"`
}

// b64url encodes as the CLI prints binary values: base64url without padding.
func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// parseID decodes a credential ID the CLI printed (base64url).
func parseID(s string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, fmt.Errorf("%q is not base64url: %w", s, err)
	}
	return b, nil
}
