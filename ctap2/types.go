package ctap2

// WebAuthn entities as CTAP2 carries them (CTAP 2.1 section 6.1.1, WebAuthn
// section 5.4). Field names are the WebAuthn member names; unknown members
// are ignored.

// RPEntity is PublicKeyCredentialRpEntity.
type RPEntity struct {
	ID   string `cbor:"id"`
	Name string `cbor:"name,omitempty"`
}

// UserEntity is PublicKeyCredentialUserEntity.
type UserEntity struct {
	ID          []byte `cbor:"id"`
	Name        string `cbor:"name,omitempty"`
	DisplayName string `cbor:"displayName,omitempty"`
}

// CredentialParameter is PublicKeyCredentialParameters.
type CredentialParameter struct {
	Type string `cbor:"type"`
	Alg  int64  `cbor:"alg"`

	// invalid is why a decoded entry is unusable (a member missing or of
	// the wrong type): the authenticator reports it only when it walks
	// the list (CTAP 2.1 section 6.1.2 step 3), after the checks before.
	invalid error
}

// UnmarshalCBOR decodes one entry of pubKeyCredParams, keeping a malformed
// entry for the authenticator to refuse in its turn.
func (p *CredentialParameter) UnmarshalCBOR(data []byte) error {
	var raw struct {
		Type *string `cbor:"type"`
		Alg  *int64  `cbor:"alg"`
	}
	*p = CredentialParameter{}
	switch err := Unmarshal(data, &raw); {
	case err != nil:
		p.invalid = err
	case raw.Type == nil || raw.Alg == nil:
		p.invalid = ErrMissingParameter
	default:
		p.Type, p.Alg = *raw.Type, *raw.Alg
	}
	return nil
}

// CredentialDescriptor is PublicKeyCredentialDescriptor.
type CredentialDescriptor struct {
	Type       string   `cbor:"type"`
	ID         []byte   `cbor:"id"`
	Transports []string `cbor:"transports,omitempty"`
	// incomplete is set by decoding when type or id is missing.
	incomplete bool
}

// publicKeyType is the only credential type WebAuthn defines.
const publicKeyType = "public-key"

// MakeCredentialRequest is the authenticatorMakeCredential parameter map
// (CTAP 2.1 section 6.1).
type MakeCredentialRequest struct {
	ClientDataHash        []byte                   `cbor:"1,keyasint"`
	RP                    *RPEntity                `cbor:"2,keyasint"`
	User                  *UserEntity              `cbor:"3,keyasint"`
	PubKeyCredParams      []CredentialParameter    `cbor:"4,keyasint"`
	ExcludeList           []CredentialDescriptor   `cbor:"5,keyasint,omitempty"`
	Extensions            MakeCredentialExtensions `cbor:"6,keyasint,omitzero"`
	Options               map[string]bool          `cbor:"7,keyasint,omitempty"`
	PinUvAuthParam        []byte                   `cbor:"8,keyasint,omitempty"`
	PinUvAuthProtocol     *uint64                  `cbor:"9,keyasint,omitempty"`
	EnterpriseAttestation *uint64                  `cbor:"10,keyasint,omitempty"`
	// AttestationFormatsPreference is the platform's order of preferred
	// attestation formats (CTAP 2.2 section 6.1, parameter 0x0B).
	AttestationFormatsPreference []string `cbor:"11,keyasint,omitempty"`
}

// makeCredentialResponse is the authenticatorMakeCredential response map.
type makeCredentialResponse struct {
	Format       string         `cbor:"1,keyasint"`
	AuthData     []byte         `cbor:"2,keyasint"`
	AttStmt      map[string]any `cbor:"3,keyasint"`
	EPAtt        bool           `cbor:"4,keyasint,omitempty"`
	LargeBlobKey []byte         `cbor:"5,keyasint,omitempty"`
}

// GetAssertionRequest is the authenticatorGetAssertion parameter map
// (CTAP 2.1 section 6.2).
type GetAssertionRequest struct {
	RPID              string                 `cbor:"1,keyasint"`
	ClientDataHash    []byte                 `cbor:"2,keyasint"`
	AllowList         []CredentialDescriptor `cbor:"3,keyasint,omitempty"`
	Extensions        GetAssertionExtensions `cbor:"4,keyasint,omitzero"`
	Options           map[string]bool        `cbor:"5,keyasint,omitempty"`
	PinUvAuthParam    []byte                 `cbor:"6,keyasint,omitempty"`
	PinUvAuthProtocol *uint64                `cbor:"7,keyasint,omitempty"`
}

// GetAssertionResponse is the authenticatorGetAssertion response map.
type GetAssertionResponse struct {
	Credential          CredentialDescriptor `cbor:"1,keyasint"`
	AuthData            []byte               `cbor:"2,keyasint"`
	Signature           []byte               `cbor:"3,keyasint"`
	User                *UserEntity          `cbor:"4,keyasint,omitempty"`
	NumberOfCredentials int                  `cbor:"5,keyasint,omitempty"`
	UserSelected        bool                 `cbor:"6,keyasint,omitempty"`
	LargeBlobKey        []byte               `cbor:"7,keyasint,omitempty"`
}

// GetInfoResponse is the authenticatorGetInfo response map (CTAP 2.1 section 6.4).
type GetInfoResponse struct {
	Versions                         []string              `cbor:"1,keyasint"`
	Extensions                       []string              `cbor:"2,keyasint,omitempty"`
	AAGUID                           []byte                `cbor:"3,keyasint"`
	Options                          map[string]bool       `cbor:"4,keyasint,omitempty"`
	MaxMsgSize                       uint64                `cbor:"5,keyasint,omitempty"`
	PinUvAuthProtocols               []uint64              `cbor:"6,keyasint,omitempty"`
	MaxCredentialCountInList         uint64                `cbor:"7,keyasint,omitempty"`
	MaxCredentialIDLength            uint64                `cbor:"8,keyasint,omitempty"`
	Transports                       []string              `cbor:"9,keyasint,omitempty"`
	Algorithms                       []CredentialParameter `cbor:"10,keyasint,omitempty"`
	MaxSerializedLargeBlobArray      uint64                `cbor:"11,keyasint,omitempty"`
	ForcePINChange                   bool                  `cbor:"12,keyasint,omitempty"`
	MinPINLength                     uint64                `cbor:"13,keyasint,omitempty"`
	FirmwareVersion                  uint64                `cbor:"14,keyasint,omitempty"`
	MaxCredBlobLength                uint64                `cbor:"15,keyasint,omitempty"`
	MaxRPIDsForSetMinPINLength       uint64                `cbor:"16,keyasint,omitempty"`
	PreferredPlatformUvAttempts      uint64                `cbor:"17,keyasint,omitempty"`
	RemainingDiscoverableCredentials *uint64               `cbor:"20,keyasint,omitempty"`
	// AttestationFormats and MaxPINLength are CTAP 2.2 fields (section
	// 6.4, keys 0x16 and 0x1D); CTAP 2.1 platforms ignore unknown keys.
	AttestationFormats []string `cbor:"22,keyasint,omitempty"`
	// EncIdentifier is CTAP 2.2's encIdentifier (section 6.4, key 0x19),
	// present while a persistent pinUvAuthToken exists (persistent.go).
	EncIdentifier []byte `cbor:"25,keyasint,omitempty"`
	MaxPINLength  uint64 `cbor:"29,keyasint,omitempty"`
}

// COSEKey is an encoded COSE_Key (RFC 9052 section 7; CTAP 2.1 section
// 6.5.6 for the key types), such as credential management reports for a
// credential's public key. It travels inside a message as the map it
// holds, not as a byte string.
type COSEKey []byte

// IsZero reports whether k is empty: a response then omits the member, as
// canonical CTAP2 CBOR must (python-fido2 refuses a null in its place).
func (k COSEKey) IsZero() bool { return len(k) == 0 }

// MarshalCBOR returns the key as it is (CBOR null when empty).
func (k COSEKey) MarshalCBOR() ([]byte, error) {
	if len(k) == 0 {
		return []byte{0xf6}, nil
	}
	return k, nil
}

// UnmarshalCBOR keeps a copy of the encoded key.
func (k *COSEKey) UnmarshalCBOR(data []byte) error {
	*k = append((*k)[:0], data...)
	return nil
}

// Algorithm is the COSE algorithm (alg, label 3) of the key, or 0 when
// the key cannot be read.
func (k COSEKey) Algorithm() int64 {
	var v struct {
		Alg int64 `cbor:"3,keyasint"`
	}
	if len(k) == 0 || Unmarshal(k, &v) != nil {
		return 0
	}
	return v.Alg
}
