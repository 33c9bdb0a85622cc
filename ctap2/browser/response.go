package browser

import (
	"encoding/base64"
	"encoding/json"
	"slices"
)

// AuthenticatorAttestationResponse is AuthenticatorAttestationResponseJSON
// (WebAuthn L3 section 5.2.1).
type AuthenticatorAttestationResponse struct {
	ClientDataJSON     Bytes    `json:"clientDataJSON"`
	AuthenticatorData  Bytes    `json:"authenticatorData"`
	Transports         []string `json:"transports"`
	PublicKey          Bytes    `json:"publicKey,omitempty"`
	PublicKeyAlgorithm int64    `json:"publicKeyAlgorithm"`
	AttestationObject  Bytes    `json:"attestationObject"`
}

// RegistrationResponse is RegistrationResponseJSON, what
// PublicKeyCredential.toJSON() gives after create() (WebAuthn L3 section
// 5.1.8).
type RegistrationResponse struct {
	ID                      string                           `json:"id"`
	RawID                   Bytes                            `json:"rawId"`
	Response                AuthenticatorAttestationResponse `json:"response"`
	AuthenticatorAttachment string                           `json:"authenticatorAttachment,omitempty"`
	ClientExtensionResults  ClientExtensionResults           `json:"clientExtensionResults"`
	Type                    string                           `json:"type"`
}

// AuthenticatorAssertionResponse is AuthenticatorAssertionResponseJSON
// (WebAuthn L3 section 5.2.2).
type AuthenticatorAssertionResponse struct {
	ClientDataJSON    Bytes `json:"clientDataJSON"`
	AuthenticatorData Bytes `json:"authenticatorData"`
	Signature         Bytes `json:"signature"`
	UserHandle        Bytes `json:"userHandle,omitempty"`
}

// AuthenticationResponse is AuthenticationResponseJSON, what
// PublicKeyCredential.toJSON() gives after get().
type AuthenticationResponse struct {
	ID                      string                         `json:"id"`
	RawID                   Bytes                          `json:"rawId"`
	Response                AuthenticatorAssertionResponse `json:"response"`
	AuthenticatorAttachment string                         `json:"authenticatorAttachment,omitempty"`
	ClientExtensionResults  ClientExtensionResults         `json:"clientExtensionResults"`
	Type                    string                         `json:"type"`
}

// JSON is r as the relying party receives it.
func (r *RegistrationResponse) JSON() []byte { b, _ := json.Marshal(r); return b }

// JSON is r as the relying party receives it.
func (r *AuthenticationResponse) JSON() []byte { return r.appendJSON(nil) }

// MarshalJSON writes r as JSON (see JSON).
func (r *AuthenticationResponse) MarshalJSON() ([]byte, error) { return r.appendJSON(nil), nil }

// appendJSON writes what encoding/json would for r's tags, without
// reflection: a sign-in's response is on the path `make bench` times.
func (r *AuthenticationResponse) appendJSON(b []byte) []byte {
	enc := base64.RawURLEncoding
	rr := &r.Response
	b = slices.Grow(b, 192+len(r.ID)+enc.EncodedLen(len(r.RawID)+len(rr.ClientDataJSON)+len(rr.AuthenticatorData)+len(rr.Signature)+len(rr.UserHandle)))
	b = append(b, `{"id":`...)
	b = appendJSONString(b, r.ID)
	b = append(b, `,"rawId":"`...)
	b = enc.AppendEncode(b, r.RawID)
	b = append(b, `","response":{"clientDataJSON":"`...)
	b = enc.AppendEncode(b, rr.ClientDataJSON)
	b = append(b, `","authenticatorData":"`...)
	b = enc.AppendEncode(b, rr.AuthenticatorData)
	b = append(b, `","signature":"`...)
	b = enc.AppendEncode(b, rr.Signature)
	if len(rr.UserHandle) > 0 {
		b = append(b, `","userHandle":"`...)
		b = enc.AppendEncode(b, rr.UserHandle)
	}
	b = append(b, `"}`...)
	if r.AuthenticatorAttachment != "" {
		b = append(b, `,"authenticatorAttachment":`...)
		b = appendJSONString(b, r.AuthenticatorAttachment)
	}
	b = append(b, `,"clientExtensionResults":`...)
	if r.ClientExtensionResults.isZero() {
		b = append(b, `{}`...)
	} else {
		ext, _ := json.Marshal(r.ClientExtensionResults)
		b = append(b, ext...)
	}
	b = append(b, `,"type":`...)
	b = appendJSONString(b, r.Type)
	return append(b, '}')
}

// CredPropsOutput is CredentialPropertiesOutput (section 10.1.3).
type CredPropsOutput struct {
	RK bool `json:"rk"`
}

// PRFOutputs is AuthenticationExtensionsPRFOutputs (section 10.1.4).
type PRFOutputs struct {
	Enabled *bool      `json:"enabled,omitempty"`
	Results *PRFValues `json:"results,omitempty"`
}

// LargeBlobOutputs is AuthenticationExtensionsLargeBlobOutputs (section 10.1.5).
type LargeBlobOutputs struct {
	Supported *bool `json:"supported,omitempty"`
	Blob      Bytes `json:"blob,omitempty"`
	Written   *bool `json:"written,omitempty"`
}

// HMACGetSecretOutput is the hmacGetSecret output (CTAP 2.1 section 12.5).
type HMACGetSecretOutput struct {
	Output1 Bytes `json:"output1"`
	Output2 Bytes `json:"output2,omitempty"`
}

// ClientExtensionResults is AuthenticationExtensionsClientOutputsJSON:
// only the extensions that were asked for and that give a client output.
type ClientExtensionResults struct {
	CredProps        *CredPropsOutput     `json:"credProps,omitempty"`
	PRF              *PRFOutputs          `json:"prf,omitempty"`
	LargeBlob        *LargeBlobOutputs    `json:"largeBlob,omitempty"`
	CredBlob         *bool                `json:"credBlob,omitempty"`
	GetCredBlob      *Bytes               `json:"getCredBlob,omitempty"` // empty when the credential has none (CTAP 2.1 section 12.2)
	HMACCreateSecret *bool                `json:"hmacCreateSecret,omitempty"`
	HMACGetSecret    *HMACGetSecretOutput `json:"hmacGetSecret,omitempty"`
}

func boolPtr(b bool) *bool { return &b }

// isZero reports that no extension gave an output.
func (e *ClientExtensionResults) isZero() bool {
	return e.CredProps == nil && e.PRF == nil && e.LargeBlob == nil && e.CredBlob == nil &&
		e.GetCredBlob == nil && e.HMACCreateSecret == nil && e.HMACGetSecret == nil
}
