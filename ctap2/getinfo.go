package ctap2

import (
	"context"
	"fmt"

	"github.com/vkey-dev/vkey/keystore"
)

// DefaultMaxMsgSize is the maxMsgSize of a key (CTAP 2.1 section 6.4):
// the largest message CTAPHID can carry (57 + 128 × 59 bytes, CTAP 2.1
// section 11.2.4), so that a full allow or exclude list of the longest
// credential IDs, with a 253-byte RP ID and every extension, fits one
// request (issue 16).
const DefaultMaxMsgSize = 7609

// Worst-case sizes of a request, for maxCredentialCountInList: a
// PublicKeyCredentialDescriptor around its ID (type, id and the five
// transports WebAuthn names), and everything else a makeCredential or
// getAssertion may carry within the limits getInfo states (a 253-byte RP ID
// and 64-byte names, a 64-byte user ID, three algorithms, every extension
// this key lists with a 32-byte credBlob, hmac-secret with two salts,
// pinUvAuthParam). TestEveryLimitAtOnce checks both against real requests.
const (
	descriptorOverhead = 64
	requestOverhead    = 1024
)

// maxListLength bounds maxCredentialCountInList.
const maxListLength = 16

// maxCredentialCountInList is how many allowList/excludeList entries a
// client may send per request (CTAP 2.1 section 6.4): as many of the
// longest credential IDs as fit maxMsgSize with everything else a request
// may hold.
func (a *Authenticator) maxCredentialCountInList() int {
	n := (a.opts.MaxMsgSize - requestOverhead) / (maxCredentialIDLength + descriptorOverhead)
	return max(1, min(n, maxListLength))
}

// DefaultAlgorithms are the algorithms a key offers unless configured
// otherwise: ES256 and EdDSA first, as before, then ES384, ES512, RS256
// and PS256 (issue 13).
var DefaultAlgorithms = []keystore.Algorithm{
	keystore.AlgES256, keystore.AlgEdDSA, keystore.AlgES384, keystore.AlgES512, keystore.AlgRS256, keystore.AlgPS256,
}

// checkAlgorithms defaults opts.Algorithms and refuses one that the
// software keys (every credential's fallback) cannot make, or a repeat.
func checkAlgorithms(opts *Options) error {
	if len(opts.Algorithms) == 0 {
		opts.Algorithms = DefaultAlgorithms
	}
	seen := map[keystore.Algorithm]bool{}
	for _, alg := range opts.Algorithms {
		if !opts.SoftwareKeys.Supports(alg) {
			return fmt.Errorf("ctap2: algorithm %d is not supported (want some of ES256, EdDSA, ES384, ES512, RS256, PS256)", alg)
		}
		if seen[alg] {
			return fmt.Errorf("ctap2: algorithm %d is listed twice", alg)
		}
		seen[alg] = true
	}
	opts.Algorithms = append([]keystore.Algorithm(nil), opts.Algorithms...)
	return nil
}

// maxSerializedLargeBlobArray is the size of the large-blob store (CTAP 2.1
// section 6.10; at least 1024).
const maxSerializedLargeBlobArray = 4096

// Info returns what authenticatorGetInfo reports.
func (a *Authenticator) Info() (*GetInfoResponse, error) {
	pinIsSet, err := a.pinSet()
	if err != nil {
		return nil, err
	}
	cfg, err := a.store.Config()
	if err != nil {
		return nil, err
	}
	st, err := a.store.PINState()
	if err != nil {
		return nil, err
	}
	var algs []CredentialParameter
	for _, alg := range a.opts.Algorithms {
		algs = append(algs, CredentialParameter{Type: publicKeyType, Alg: int64(alg)})
	}
	rem, err := a.remainingDiscoverable()
	if err != nil {
		return nil, err
	}
	remaining := uint64(rem)
	info := &GetInfoResponse{
		// FIDO_2_1_PRE: the preview credential management command (0x41)
		// accepts getPinToken tokens, as keys listing it do.
		// No FIDO_2_2 (issue 13): no published CTAP version defines that
		// string. The 2023 CTAP 2.2 review drafts listed it, the CTAP 2.2
		// Proposed Standard has a 2.2 key report FIDO_2_1, and CTAP 2.3
		// section 6.4 says FIDO_2_2 MUST NOT be in versions (as read by
		// go-ctap, telesma-app/kit's conformance rules and pico-fido,
		// which dropped it after Windows refused such a key's PIN). So
		// each CTAP 2.2 feature is advertised on its own (hmac-secret-mc,
		// thirdPartyPayment, perCredMgmtRO with encIdentifier,
		// attestationFormats, maxPINLength), which a 2.1 platform skips.
		Versions: []string{"U2F_V2", "FIDO_2_0", "FIDO_2_1_PRE", "FIDO_2_1"},
		// hmac-secret-mc: CTAP 2.2 section 12.7; a CTAP 2.1 platform
		// skips a name it does not know.
		Extensions: []string{"credBlob", "credProtect", "hmac-secret", "hmac-secret-mc", "largeBlobKey", "minPinLength", "thirdPartyPayment"},
		AAGUID:     a.opts.AAGUID[:],
		Options: map[string]bool{
			"rk":                    true,
			"up":                    true,
			"plat":                  false,
			"clientPin":             pinIsSet,
			"pinUvAuthToken":        true,
			"credMgmt":              true,
			"credentialMgmtPreview": true,
			"largeBlobs":            true,
			"authnrCfg":             true,
			"setMinPINLength":       true,
			"makeCredUvNotRqd":      true,
			"alwaysUv":              cfg.AlwaysUV,
			"ep":                    cfg.EnterpriseAttestation,
			// CTAP 2.2 persistent pinUvAuthToken (persistent.go); a
			// CTAP 2.1 platform ignores an option it does not know.
			"perCredMgmtRO": true,
		},
		MaxMsgSize:                       uint64(a.opts.MaxMsgSize),
		PinUvAuthProtocols:               []uint64{2, 1},
		MaxCredentialCountInList:         uint64(a.maxCredentialCountInList()),
		MaxCredentialIDLength:            maxCredentialIDLength,
		Transports:                       []string{"usb"},
		Algorithms:                       algs,
		MaxSerializedLargeBlobArray:      maxSerializedLargeBlobArray,
		ForcePINChange:                   st.ForceChange,
		MinPINLength:                     uint64(a.minPINLength()),
		FirmwareVersion:                  a.opts.FirmwareVersion,
		MaxCredBlobLength:                maxCredBlobLength,
		MaxRPIDsForSetMinPINLength:       maxRPIDsForSetMinPINLength,
		RemainingDiscoverableCredentials: &remaining,
		AttestationFormats:               a.attestationFormats(),
		MaxPINLength:                     maxPINBytes, // 63 bytes: 63 code points of ASCII
	}
	if info.EncIdentifier, err = a.encIdentifier(st); err != nil {
		return nil, err
	}
	if a.opts.UserVerifier != nil {
		// A built-in UV method, configured, that also gives tokens.
		info.Options["uv"] = true
		info.Options["uvToken"] = true
		info.PreferredPlatformUvAttempts = 1
	}
	a.shapeInfo(info)
	if cfg.AlwaysUV {
		// After the profile: alwaysUv turns U2F off whatever key vkey
		// stands in for (CTAP 2.1 section 7.2).
		info.Versions = withoutU2F(info.Versions)
	}
	return info, nil
}

// getInfo is authenticatorGetInfo (CTAP 2.1 section 6.4).
func (a *Authenticator) getInfo(ctx context.Context, params []byte) (any, error) {
	return a.Info()
}
