package browser

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
)

// Bytes is binary data as WebAuthn's JSON forms carry it: base64url
// without padding (WebAuthn L3 section 5.1.8, Base64URLString). It also
// reads padded and standard base64, which some relying parties emit.
type Bytes []byte

// MarshalText encodes b as base64url without padding (encoding/json
// quotes it).
func (b Bytes) MarshalText() ([]byte, error) {
	out := make([]byte, base64.RawURLEncoding.EncodedLen(len(b)))
	base64.RawURLEncoding.Encode(out, b)
	return out, nil
}

// UnmarshalText decodes base64url or base64, padded or not.
func (b *Bytes) UnmarshalText(text []byte) error {
	t := bytes.TrimRight(text, "=")
	out := make([]byte, base64.RawURLEncoding.DecodedLen(len(t)))
	n, err := base64.RawURLEncoding.Decode(out, t)
	if err != nil {
		if n, err = base64.RawStdEncoding.Decode(out, t); err != nil {
			return fmt.Errorf("%q is not base64url", t)
		}
	}
	*b = out[:n]
	return nil
}

// RPEntity is PublicKeyCredentialRpEntity.
type RPEntity struct {
	ID   string `json:"id,omitempty"`
	Name string `json:"name"`
}

// UserEntity is PublicKeyCredentialUserEntityJSON.
type UserEntity struct {
	ID          Bytes  `json:"id"`
	Name        string `json:"name"`
	DisplayName string `json:"displayName"`
}

// CredentialParameter is PublicKeyCredentialParameters.
type CredentialParameter struct {
	Type string `json:"type"`
	Alg  int64  `json:"alg"`
}

// CredentialDescriptor is PublicKeyCredentialDescriptorJSON.
type CredentialDescriptor struct {
	Type       string   `json:"type"`
	ID         Bytes    `json:"id"`
	Transports []string `json:"transports,omitempty"`
}

// AuthenticatorSelection is AuthenticatorSelectionCriteria.
type AuthenticatorSelection struct {
	AuthenticatorAttachment string `json:"authenticatorAttachment,omitempty"`
	ResidentKey             string `json:"residentKey,omitempty"`
	RequireResidentKey      bool   `json:"requireResidentKey,omitempty"`
	UserVerification        string `json:"userVerification,omitempty"`
}

// CreationOptions is PublicKeyCredentialCreationOptionsJSON (WebAuthn L3
// section 5.1.8).
type CreationOptions struct {
	RP                     RPEntity                `json:"rp"`
	User                   UserEntity              `json:"user"`
	Challenge              Bytes                   `json:"challenge"`
	PubKeyCredParams       []CredentialParameter   `json:"pubKeyCredParams"`
	Timeout                uint64                  `json:"timeout,omitempty"`
	ExcludeCredentials     []CredentialDescriptor  `json:"excludeCredentials,omitempty"`
	AuthenticatorSelection *AuthenticatorSelection `json:"authenticatorSelection,omitempty"`
	Hints                  []string                `json:"hints,omitempty"`
	Attestation            string                  `json:"attestation,omitempty"`
	AttestationFormats     []string                `json:"attestationFormats,omitempty"`
	Extensions             Extensions              `json:"extensions,omitempty"`
}

// RequestOptions is PublicKeyCredentialRequestOptionsJSON (WebAuthn L3
// section 5.1.8).
type RequestOptions struct {
	Challenge        Bytes                  `json:"challenge"`
	Timeout          uint64                 `json:"timeout,omitempty"`
	RPID             string                 `json:"rpId,omitempty"`
	AllowCredentials []CredentialDescriptor `json:"allowCredentials,omitempty"`
	UserVerification string                 `json:"userVerification,omitempty"`
	Hints            []string               `json:"hints,omitempty"`
	Extensions       Extensions             `json:"extensions,omitempty"`
}

// PRFValues is AuthenticationExtensionsPRFValues.
type PRFValues struct {
	First  Bytes `json:"first"`
	Second Bytes `json:"second,omitempty"`
}

// PRFInputs is AuthenticationExtensionsPRFInputs (WebAuthn L3 section 10.1.4).
type PRFInputs struct {
	Eval             *PRFValues           `json:"eval,omitempty"`
	EvalByCredential map[string]PRFValues `json:"evalByCredential,omitempty"`
}

// LargeBlobInputs is AuthenticationExtensionsLargeBlobInputs (section 10.1.5).
type LargeBlobInputs struct {
	Support string `json:"support,omitempty"`
	Read    bool   `json:"read,omitempty"`
	Write   Bytes  `json:"write,omitempty"`
}

// HMACGetSecretInput is the hmacGetSecret input (CTAP 2.1 section 12.5).
type HMACGetSecretInput struct {
	Salt1 Bytes `json:"salt1"`
	Salt2 Bytes `json:"salt2,omitempty"`
}

// Extensions is AuthenticationExtensionsClientInputsJSON: the client
// extensions this client implements. Unknown members are ignored, as
// browsers ignore extensions they do not know (WebAuthn L3 section 9).
type Extensions struct {
	CredProps                         bool                `json:"credProps,omitempty"`
	PRF                               *PRFInputs          `json:"prf,omitempty"`
	LargeBlob                         *LargeBlobInputs    `json:"largeBlob,omitempty"`
	CredentialProtectionPolicy        string              `json:"credentialProtectionPolicy,omitempty"`
	EnforceCredentialProtectionPolicy bool                `json:"enforceCredentialProtectionPolicy,omitempty"`
	CredBlob                          Bytes               `json:"credBlob,omitempty"`
	GetCredBlob                       bool                `json:"getCredBlob,omitempty"`
	MinPinLength                      bool                `json:"minPinLength,omitempty"`
	HMACCreateSecret                  bool                `json:"hmacCreateSecret,omitempty"`
	HMACGetSecret                     *HMACGetSecretInput `json:"hmacGetSecret,omitempty"`
}

// wrappedCreationOptions reads both shapes of the options in one pass.
type wrappedCreationOptions struct {
	PublicKey *CreationOptions `json:"publicKey"`
	CreationOptions
}

// wrappedRequestOptions reads both shapes of the options in one pass.
type wrappedRequestOptions struct {
	PublicKey *RequestOptions `json:"publicKey"`
	RequestOptions
}

// ParseCreationOptions reads PublicKeyCredentialCreationOptionsJSON, bare
// or wrapped as {"publicKey": …}. Malformed options are a TypeError, as
// PublicKeyCredential.parseCreationOptionsFromJSON() throws.
func ParseCreationOptions(data []byte) (*CreationOptions, error) {
	// One pass reads both shapes: bare, or wrapped as {"publicKey": …}
	// (navigator.credentials.create()'s argument, which go-webauthn emits).
	var w wrappedCreationOptions
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, domError(TypeError, err, "the creation options are not PublicKeyCredentialCreationOptionsJSON")
	}
	o := w.CreationOptions
	if w.PublicKey != nil {
		o = *w.PublicKey
	}
	switch {
	case o.Challenge == nil:
		return nil, domError(TypeError, nil, "the creation options have no challenge")
	case o.RP.Name == "" && o.RP.ID == "":
		return nil, domError(TypeError, nil, "the creation options have no rp")
	case len(o.User.ID) < 1 || len(o.User.ID) > 64:
		// Section 5.1.3 step 5: user.id is 1 to 64 bytes.
		return nil, domError(TypeError, nil, "user.id is %d bytes; WebAuthn wants 1 to 64", len(o.User.ID))
	}
	return &o, nil
}

// ParseRequestOptions reads PublicKeyCredentialRequestOptionsJSON, bare or
// wrapped as {"publicKey": …}.
func ParseRequestOptions(data []byte) (*RequestOptions, error) {
	if o, ok := parseRequestFast(data); ok {
		if o.Challenge == nil {
			return nil, domError(TypeError, nil, "the request options have no challenge")
		}
		return o, nil
	}
	var w wrappedRequestOptions
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, domError(TypeError, err, "the request options are not PublicKeyCredentialRequestOptionsJSON")
	}
	o := w.RequestOptions
	if w.PublicKey != nil {
		o = *w.PublicKey
	}
	if o.Challenge == nil {
		return nil, domError(TypeError, nil, "the request options have no challenge")
	}
	return &o, nil
}
