package ctap2

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"

	"github.com/vkey-dev/vkey/keystore"
)

// authenticatorCredentialManagement subcommands (CTAP 2.1 section 6.8).
const (
	CredMgmtGetCredsMetadata            = 0x01 // getCredsMetadata
	CredMgmtEnumerateRPsBegin           = 0x02 // enumerateRPsBegin
	CredMgmtEnumerateRPsGetNextRP       = 0x03 // enumerateRPsGetNextRP
	CredMgmtEnumerateCredentialsBegin   = 0x04 // enumerateCredentialsBegin
	CredMgmtEnumerateCredentialsGetNext = 0x05 // enumerateCredentialsGetNextCredential
	CredMgmtDeleteCredential            = 0x06 // deleteCredential
	CredMgmtUpdateUserInformation       = 0x07 // updateUserInformation
)

// credMgmtVolatile is the enumeration state of credentialManagement.
type credMgmtVolatile struct {
	rps   []RPEntity
	creds []*keystore.Credential
	// persistent is set when the persistent token authorized the
	// enumeration (persistent.go).
	persistent bool
}

type credMgmtParams struct {
	RPIDHash     []byte                `cbor:"1,keyasint,omitempty"`
	CredentialID *CredentialDescriptor `cbor:"2,keyasint,omitempty"`
	User         *UserEntity           `cbor:"3,keyasint,omitempty"`
}

// CredMgmtResponse is the authenticatorCredentialManagement response map.
type CredMgmtResponse struct {
	ExistingResidentCredentialsCount        *uint64               `cbor:"1,keyasint,omitempty"`
	MaxPossibleRemainingResidentCredentials *uint64               `cbor:"2,keyasint,omitempty"`
	RP                                      *RPEntity             `cbor:"3,keyasint,omitempty"`
	RPIDHash                                []byte                `cbor:"4,keyasint,omitempty"`
	TotalRPs                                uint64                `cbor:"5,keyasint,omitempty"`
	User                                    *UserEntity           `cbor:"6,keyasint,omitempty"`
	CredentialID                            *CredentialDescriptor `cbor:"7,keyasint,omitempty"`
	PublicKey                               COSEKey               `cbor:"8,keyasint,omitzero"`
	TotalCredentials                        uint64                `cbor:"9,keyasint,omitempty"`
	CredProtect                             uint64                `cbor:"10,keyasint,omitempty"`
	LargeBlobKey                            []byte                `cbor:"11,keyasint,omitempty"`
	// ThirdPartyPayment (CTAP 2.2 section 6.8, 0x0C) is whether the
	// credential was made with the thirdPartyPayment extension: present,
	// true or false, for every credential of a key that advertises that
	// extension, absent for one that does not (a profile's).
	ThirdPartyPayment *bool `cbor:"12,keyasint,omitempty"`
}

// credentialManagement is authenticatorCredentialManagement (CTAP 2.1
// section 6.8).
func (a *Authenticator) credentialManagement(ctx context.Context, params []byte) (any, error) {
	return a.credMgmt(params, false)
}

// credentialManagementPreview is the same command on its FIDO_2_1_PRE code
// 0x41. Platforms of that generation have only getPinToken (0x05), whose
// token carries the mc and ga permissions alone (CTAP 2.1 section
// 6.5.5.7.1): here such a token may manage credentials, as on the keys
// that list FIDO_2_1_PRE (YubiKey 5 firmware 5.2 to 5.4 accept it).
func (a *Authenticator) credentialManagementPreview(ctx context.Context, params []byte) (any, error) {
	return a.credMgmt(params, true)
}

// credMgmt serves both codes of credential management.
func (a *Authenticator) credMgmt(params []byte, preview bool) (any, error) {
	req, sub, err := decodeSubcommand(params)
	if err != nil {
		return nil, err
	}
	var p credMgmtParams
	if len(req.SubCommandParams) > 0 {
		if err := Unmarshal(req.SubCommandParams, &p); err != nil {
			return nil, err
		}
	}
	switch sub {
	case CredMgmtEnumerateRPsGetNextRP:
		return a.nextRP()
	case CredMgmtEnumerateCredentialsGetNext:
		return a.nextCredential()
	case CredMgmtGetCredsMetadata, CredMgmtEnumerateRPsBegin, CredMgmtEnumerateCredentialsBegin, CredMgmtDeleteCredential, CredMgmtUpdateUserInformation:
	default:
		return nil, ErrInvalidSubcommand
	}
	a.volatile.cm = credMgmtVolatile{}
	// Every other subcommand needs a token with the cm permission
	// (CTAP 2.1 section 6.8.x, step 1 of each).
	if req.PinUvAuthParam == nil {
		return nil, ErrPUATRequired
	}
	msg := CredMgmtAuthMessage(sub, req.SubCommandParams)
	// The persistent token (pcmr) authorizes the read-only subcommands of
	// the CTAP 2.2 command; anything else needs an ordinary cm token.
	persistent := !preview && readOnlyCredMgmt(sub) && a.persistentTokenVerifies(req.PinUvAuthProtocol, req.PinUvAuthParam, msg)
	if !persistent {
		if err := a.verifyTokenWith(req.PinUvAuthProtocol, req.PinUvAuthParam, msg, PermCredentialMgmt, "", preview); err != nil {
			return nil, err
		}
	}
	a.volatile.cm.persistent = persistent
	switch sub {
	case CredMgmtGetCredsMetadata:
		if err := a.tokenUnbound(); err != nil && !persistent {
			return nil, err
		}
		count, err := a.store.DiscoverableCount()
		if err != nil {
			return nil, fmt.Errorf("counting credentials: %w", err)
		}
		left, err := a.remainingDiscoverable()
		if err != nil {
			return nil, err
		}
		n, rem := uint64(count), uint64(left)
		return CredMgmtResponse{ExistingResidentCredentialsCount: &n, MaxPossibleRemainingResidentCredentials: &rem}, nil
	case CredMgmtEnumerateRPsBegin:
		if err := a.tokenUnbound(); err != nil && !persistent {
			return nil, err
		}
		// One read per relying party, not per credential: the store
		// may hold many more credentials than RPs.
		rps, err := a.store.DiscoverableRPs()
		if err != nil {
			return nil, fmt.Errorf("listing relying parties: %w", err)
		}
		return a.beginRPs(rps)
	case CredMgmtEnumerateCredentialsBegin:
		if p.RPIDHash == nil {
			return nil, ErrMissingParameter
		}
		var all []*keystore.Credential
		if len(p.RPIDHash) == sha256.Size {
			var err error
			if all, err = a.store.DiscoverableCredentials(p.RPIDHash); err != nil {
				return nil, fmt.Errorf("listing credentials: %w", err)
			}
		}
		return a.beginCredentials(all, p.RPIDHash)
	case CredMgmtDeleteCredential:
		return nil, a.deleteCredential(&p)
	default:
		return nil, a.updateUser(&p)
	}
}

// tokenUnbound refuses a token bound to one RP for whole-key operations.
func (a *Authenticator) tokenUnbound() error {
	if a.volatile.pin.token.rpID != "" {
		return ErrPINAuthInvalid
	}
	return nil
}

// tokenAllowsRP refuses a token bound to another RP; the persistent
// token is bound to none.
func (a *Authenticator) tokenAllowsRP(rpID string) error {
	if a.volatile.cm.persistent {
		return nil
	}
	if t := a.volatile.pin.token.rpID; t != "" && t != rpID {
		return ErrPINAuthInvalid
	}
	return nil
}

// beginRPs is enumerateRPsBegin (CTAP 2.1 section 6.8.3) over the store's
// summaries, in their RP ID order (the spec sets none).
func (a *Authenticator) beginRPs(summaries []keystore.RPSummary) (any, error) {
	if len(summaries) == 0 {
		return nil, ErrNoCredentials
	}
	rps := make([]RPEntity, 0, len(summaries))
	for _, s := range summaries {
		rps = append(rps, RPEntity{ID: s.ID, Name: s.Name})
	}
	a.volatile.cm.rps = rps[1:]
	resp := rpResponse(rps[0])
	resp.TotalRPs = uint64(len(rps))
	return resp, nil
}

func rpResponse(rp RPEntity) CredMgmtResponse {
	h := sha256Sum([]byte(rp.ID))
	return CredMgmtResponse{RP: &rp, RPIDHash: h[:]}
}

func (a *Authenticator) nextRP() (any, error) {
	if len(a.volatile.cm.rps) == 0 {
		return nil, ErrNotAllowed
	}
	rp := a.volatile.cm.rps[0]
	a.volatile.cm.rps = a.volatile.cm.rps[1:]
	return rpResponse(rp), nil
}

func (a *Authenticator) beginCredentials(all []*keystore.Credential, rpIDHash []byte) (any, error) {
	var creds []*keystore.Credential
	for _, c := range all {
		h := sha256Sum([]byte(c.RPID))
		if bytes.Equal(h[:], rpIDHash) {
			creds = append(creds, c)
		}
	}
	if len(creds) == 0 {
		return nil, ErrNoCredentials
	}
	if err := a.tokenAllowsRP(creds[0].RPID); err != nil {
		return nil, err
	}
	a.volatile.cm.creds = creds[1:]
	resp := a.credentialResponse(creds[0])
	resp.TotalCredentials = uint64(len(creds))
	return resp, nil
}

func (a *Authenticator) credentialResponse(c *keystore.Credential) CredMgmtResponse {
	level := uint64(c.CredProtect)
	if level == 0 {
		level = 1
	}
	// A key that advertises thirdPartyPayment says false too: absent
	// would leave a CTAP 2.2 platform unable to tell an ordinary
	// credential from a key that does not know the flag (python-fido2 2.x
	// reports None for it).
	var payment *bool
	if p := a.opts.Profile; p == nil || slices.Contains(p.Extensions, "thirdPartyPayment") {
		payment = &c.ThirdPartyPayment
	}
	return CredMgmtResponse{
		// An empty user ID is an empty byte string, never null.
		User:         &UserEntity{ID: append([]byte{}, c.UserID...), Name: c.UserName, DisplayName: c.UserDisplayName},
		CredentialID: &CredentialDescriptor{Type: publicKeyType, ID: c.ID},
		PublicKey:    COSEKey(c.PublicKey),
		CredProtect:  level,
		LargeBlobKey: c.LargeBlobKey,

		ThirdPartyPayment: payment,
	}
}

func (a *Authenticator) nextCredential() (any, error) {
	if len(a.volatile.cm.creds) == 0 {
		return nil, ErrNotAllowed
	}
	c := a.volatile.cm.creds[0]
	a.volatile.cm.creds = a.volatile.cm.creds[1:]
	return a.credentialResponse(c), nil
}

func (a *Authenticator) storedDiscoverable(d *CredentialDescriptor) (*keystore.Credential, error) {
	if d == nil || d.incomplete {
		return nil, ErrMissingParameter
	}
	c, err := a.store.Credential(d.ID)
	if errors.Is(err, keystore.ErrNotFound) || (err == nil && !c.Discoverable) {
		return nil, ErrNoCredentials
	}
	if err != nil {
		return nil, fmt.Errorf("reading credential: %w", err)
	}
	if err := a.tokenAllowsRP(c.RPID); err != nil {
		return nil, err
	}
	return c, nil
}

func (a *Authenticator) deleteCredential(p *credMgmtParams) error {
	c, err := a.storedDiscoverable(p.CredentialID)
	if err != nil {
		return err
	}
	if err := a.store.DeleteCredential(c.ID); err != nil {
		return fmt.Errorf("deleting credential: %w", err)
	}
	a.emit(CredentialDeleted{RPID: c.RPID, CredentialID: c.ID})
	return nil
}

// updateUser is updateUserInformation (CTAP 2.1 section 6.8.6).
func (a *Authenticator) updateUser(p *credMgmtParams) error {
	if p.User == nil {
		return ErrMissingParameter
	}
	c, err := a.storedDiscoverable(p.CredentialID)
	if err != nil {
		return err
	}
	if !bytes.Equal(c.UserID, p.User.ID) {
		return ErrInvalidParameter
	}
	c.UserName = truncateUTF8(p.User.Name, maxEntityStringBytes)
	c.UserDisplayName = truncateUTF8(p.User.DisplayName, maxEntityStringBytes)
	if err := a.store.PutCredential(c); err != nil {
		return fmt.Errorf("updating credential: %w", err)
	}
	a.emit(CredentialUpdated{RPID: c.RPID, CredentialID: c.ID})
	return nil
}
