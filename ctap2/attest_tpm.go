package ctap2

import (
	"github.com/vkey-dev/vkey/keystore"
)

// tpmAttestation builds the WebAuthn "tpm" attestation statement (WebAuthn
// section 8.3) for a credential whose key lives in the TPM. TODO(issue 6).
func (a *Authenticator) tpmAttestation(key keystore.TPMKey, attToBeSigned []byte) (map[string]any, error) {
	return nil, ErrUnsupportedOption
}
