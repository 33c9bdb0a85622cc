package ctap2

import "github.com/vkey-dev/vkey/keystore"

// hmacSecretRequest is a checked hmac-secret (getAssertion, CTAP 2.1
// section 12.5) or hmac-secret-mc (makeCredential, CTAP 2.2 section 12.7)
// input: the PIN/UV protocol, the shared secret and the decrypted salts.
type hmacSecretRequest struct {
	proto  PINProtocol
	shared []byte
	salts  []byte // salt1 || optional salt2
}

// checkHMACSecretInput checks an hmac-secret input against the
// current key agreement key: a missing member is
// CTAP2_ERR_MISSING_PARAMETER, an unknown protocol
// CTAP1_ERR_INVALID_PARAMETER, a saltAuth that does not verify
// CTAP2_ERR_PIN_AUTH_INVALID and salts other than 32 or 64 bytes
// CTAP1_ERR_INVALID_LENGTH (CTAP 2.1 section 12.5, which section 12.7 of
// CTAP 2.2 follows for hmac-secret-mc).
func (a *Authenticator) checkHMACSecretInput(in *HMACSecretInput) (*hmacSecretRequest, error) {
	if in.invalid != nil {
		return nil, in.invalid
	}
	if in.KeyAgreement == nil || in.SaltEnc == nil || in.SaltAuth == nil {
		return nil, ErrMissingParameter
	}
	version := uint64(1)
	if in.PinUvAuthProtocol != nil {
		version = *in.PinUvAuthProtocol
	}
	proto, ok := a.pinProtocol(version)
	if !ok {
		return nil, ErrInvalidParameter
	}
	shared, err := SharedSecret(proto, a.volatile.pin.keyAgreement, in.KeyAgreement)
	if err != nil {
		return nil, err
	}
	if !proto.Verify(shared, in.SaltEnc, in.SaltAuth) {
		return nil, ErrPINAuthInvalid
	}
	salts, err := proto.Decrypt(shared, in.SaltEnc)
	if err != nil || (len(salts) != 32 && len(salts) != 64) {
		return nil, ErrInvalidLength
	}
	return &hmacSecretRequest{proto: proto, shared: shared, salts: salts}, nil
}

// output is the encrypted HMAC-SHA-256 of the salts under c's CredRandom
// for uv (CTAP 2.1 section 12.5, authenticator processing).
func (r *hmacSecretRequest) output(c *keystore.Credential, uv bool) ([]byte, error) {
	credRandom := c.CredRandomWithoutUV
	if uv {
		credRandom = c.CredRandomWithUV
	}
	out := hmacSHA256(credRandom, r.salts[:32])
	if len(r.salts) == 64 {
		out = append(out, hmacSHA256(credRandom, r.salts[32:])...)
	}
	return r.proto.Encrypt(r.shared, out)
}
