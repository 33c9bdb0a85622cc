package ctap2

import (
	"context"

	"github.com/vkey-dev/vkey/keystore"
)

// maxCredentialCountInList is how many allowList/excludeList entries a
// client may send per request (CTAP 2.1 section 6.4).
const maxCredentialCountInList = 16

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
	for _, alg := range []keystore.Algorithm{keystore.AlgES256, keystore.AlgEdDSA} {
		if a.supportsAlgorithm(alg) {
			algs = append(algs, CredentialParameter{Type: publicKeyType, Alg: int64(alg)})
		}
	}
	// Never negative: a state over its limit has 0 left, not 2^64 - k.
	remaining := uint64(max(a.store.RemainingDiscoverable(), 0))
	info := &GetInfoResponse{
		Versions:   []string{"U2F_V2", "FIDO_2_0", "FIDO_2_1"},
		Extensions: []string{"credBlob", "credProtect", "hmac-secret", "largeBlobKey", "minPinLength"},
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
		},
		MaxMsgSize:                       uint64(a.opts.MaxMsgSize),
		PinUvAuthProtocols:               []uint64{2, 1},
		MaxCredentialCountInList:         maxCredentialCountInList,
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
	}
	if a.opts.UserVerifier != nil {
		// A built-in UV method, configured, that also gives tokens.
		info.Options["uv"] = true
		info.Options["uvToken"] = true
		info.PreferredPlatformUvAttempts = 1
	}
	return info, nil
}

// getInfo is authenticatorGetInfo (CTAP 2.1 section 6.4).
func (a *Authenticator) getInfo(ctx context.Context, params []byte) (any, error) {
	return a.Info()
}
