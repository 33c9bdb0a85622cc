package client

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/vkey-dev/vkey/ctap2"
)

type credMgmtParams struct {
	RPIDHash     []byte                      `cbor:"1,keyasint,omitempty"`
	CredentialID *ctap2.CredentialDescriptor `cbor:"2,keyasint,omitempty"`
	User         *ctap2.UserEntity           `cbor:"3,keyasint,omitempty"`
}

// CredMgmt runs authenticatorCredentialManagement with one pinUvAuthToken
// that has the cm permission (CTAP 2.1 section 6.8).
type CredMgmt struct {
	c   *Client
	tok *Token
	cmd byte
}

// CredentialManagement returns a credential manager using tok. preview
// selects the pre-2.1 command code 0x41, for authenticators whose getInfo
// has credentialMgmtPreview but not credMgmt.
func (c *Client) CredentialManagement(tok *Token, preview bool) *CredMgmt {
	cmd := ctap2.CmdCredentialManagement
	if preview {
		cmd = ctap2.CmdCredentialMgmtPreview
	}
	return &CredMgmt{c: c, tok: tok, cmd: cmd}
}

// call sends a subcommand; authenticated ones carry
// authenticate(token, subCommand || subCommandParams).
func (m *CredMgmt) call(ctx context.Context, sub uint64, params *credMgmtParams, auth bool) (*ctap2.CredMgmtResponse, error) {
	req := subcommandRequest{SubCommand: sub}
	if params != nil {
		raw, err := ctap2.Marshal(params)
		if err != nil {
			return nil, fmt.Errorf("encoding parameters: %w", err)
		}
		req.SubCommandParams = raw
	}
	if auth {
		if m.tok == nil {
			return nil, errors.New("credential management needs a PIN token")
		}
		req.PinUvAuthProtocol = m.tok.Version()
		req.PinUvAuthParam = m.tok.Param(ctap2.CredMgmtAuthMessage(sub, req.SubCommandParams))
	}
	var resp ctap2.CredMgmtResponse
	if err := m.c.Call(ctx, m.cmd, req, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// Metadata returns how many discoverable credentials exist and how many
// more fit (getCredsMetadata).
func (m *CredMgmt) Metadata(ctx context.Context) (existing, remaining uint64, err error) {
	resp, err := m.call(ctx, ctap2.CredMgmtGetCredsMetadata, nil, true)
	if err != nil {
		return 0, 0, fmt.Errorf("getCredsMetadata: %w", err)
	}
	if resp.ExistingResidentCredentialsCount == nil || resp.MaxPossibleRemainingResidentCredentials == nil {
		return 0, 0, errors.New("getCredsMetadata: incomplete response")
	}
	return *resp.ExistingResidentCredentialsCount, *resp.MaxPossibleRemainingResidentCredentials, nil
}

// RP is a relying party with discoverable credentials on the key.
type RP struct {
	ID     string
	Name   string
	IDHash []byte
}

// RPByID names a relying party by its ID, for Credentials.
func RPByID(id string) RP {
	h := sha256.Sum256([]byte(id))
	return RP{ID: id, IDHash: h[:]}
}

// RPs enumerates the relying parties (enumerateRPsBegin/GetNextRP); none
// is an empty list.
func (m *CredMgmt) RPs(ctx context.Context) ([]RP, error) {
	resp, err := m.call(ctx, ctap2.CredMgmtEnumerateRPsBegin, nil, true)
	if errors.Is(err, ctap2.ErrNoCredentials) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("enumerateRPsBegin: %w", err)
	}
	total := resp.TotalRPs
	var out []RP
	for i := uint64(0); ; i++ {
		if resp.RP == nil {
			return nil, errors.New("enumerateRPs: response without rp")
		}
		out = append(out, RP{ID: resp.RP.ID, Name: resp.RP.Name, IDHash: resp.RPIDHash})
		if i+1 >= total {
			return out, nil
		}
		if resp, err = m.call(ctx, ctap2.CredMgmtEnumerateRPsGetNextRP, nil, false); err != nil {
			return nil, fmt.Errorf("enumerateRPsGetNextRP: %w", err)
		}
	}
}

// Credential is a discoverable credential as credential management
// reports it.
type Credential struct {
	RPID         string
	User         ctap2.UserEntity
	ID           []byte
	PublicKey    ctap2.COSEKey
	CredProtect  uint64
	LargeBlobKey []byte
	// ThirdPartyPayment is the CTAP 2.2 field (0x0C): whether the
	// credential is a payment credential, nil when the key did not say.
	ThirdPartyPayment *bool
}

// Algorithm is the COSE algorithm (alg, label 3) of the credential's public
// key, or 0 when the key cannot be read.
func (c Credential) Algorithm() int64 { return c.PublicKey.Algorithm() }

// Credentials enumerates the discoverable credentials of the relying party
// whose SHA-256 is rpIDHash (enumerateCredentialsBegin/GetNextCredential).
func (m *CredMgmt) Credentials(ctx context.Context, rp RP) ([]Credential, error) {
	resp, err := m.call(ctx, ctap2.CredMgmtEnumerateCredentialsBegin, &credMgmtParams{RPIDHash: rp.IDHash}, true)
	if errors.Is(err, ctap2.ErrNoCredentials) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("enumerateCredentialsBegin: %w", err)
	}
	total := resp.TotalCredentials
	var out []Credential
	for i := uint64(0); ; i++ {
		if resp.CredentialID == nil || resp.User == nil {
			return nil, errors.New("enumerateCredentials: incomplete response")
		}
		out = append(out, Credential{
			RPID: rp.ID, User: *resp.User, ID: resp.CredentialID.ID, PublicKey: resp.PublicKey,
			CredProtect: resp.CredProtect, LargeBlobKey: resp.LargeBlobKey, ThirdPartyPayment: resp.ThirdPartyPayment,
		})
		if i+1 >= total {
			return out, nil
		}
		if resp, err = m.call(ctx, ctap2.CredMgmtEnumerateCredentialsGetNext, nil, false); err != nil {
			return nil, fmt.Errorf("enumerateCredentialsGetNextCredential: %w", err)
		}
	}
}

// All enumerates every discoverable credential of every relying party.
func (m *CredMgmt) All(ctx context.Context) ([]Credential, error) {
	rps, err := m.RPs(ctx)
	if err != nil {
		return nil, err
	}
	var out []Credential
	for _, rp := range rps {
		cs, err := m.Credentials(ctx, rp)
		if err != nil {
			return nil, err
		}
		out = append(out, cs...)
	}
	return out, nil
}

// Delete deletes a discoverable credential (deleteCredential).
func (m *CredMgmt) Delete(ctx context.Context, id []byte) error {
	_, err := m.call(ctx, ctap2.CredMgmtDeleteCredential, &credMgmtParams{CredentialID: &ctap2.CredentialDescriptor{Type: "public-key", ID: id}}, true)
	if err != nil {
		return fmt.Errorf("deleteCredential: %w", err)
	}
	return nil
}

// UpdateUser replaces the user name and display name of a discoverable
// credential (updateUserInformation, CTAP 2.1 section 6.8.6); user.ID must
// be the credential's user handle.
func (m *CredMgmt) UpdateUser(ctx context.Context, id []byte, user ctap2.UserEntity) error {
	_, err := m.call(ctx, ctap2.CredMgmtUpdateUserInformation, &credMgmtParams{
		CredentialID: &ctap2.CredentialDescriptor{Type: "public-key", ID: id}, User: &user}, true)
	if err != nil {
		return fmt.Errorf("updateUserInformation: %w", err)
	}
	return nil
}
