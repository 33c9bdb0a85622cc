package webauthntest

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/go-webauthn/webauthn/metadata"
	"github.com/go-webauthn/webauthn/metadata/providers/memory"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"
)

// NewWithMetadata returns a relying party for rpID that checks attestation
// against one FIDO metadata statement (MDS3 JSON), with every validation
// go-webauthn's memory provider offers: an entry for the AAGUID, the trust
// anchor, the status (the entry is FIDO_CERTIFIED), attestation types and
// formats, AAGUID, algorithms, backup eligibility, extensions and UV.
func NewWithMetadata(rpID string, statementJSON []byte) (*RP, error) {
	var sj metadata.StatementJSON
	if err := json.Unmarshal(statementJSON, &sj); err != nil {
		return nil, fmt.Errorf("metadata statement JSON: %w", err)
	}
	stmt, err := sj.Parse()
	if err != nil {
		return nil, fmt.Errorf("metadata statement: %w", err)
	}
	since := time.Now().Add(-time.Hour)
	entry := &metadata.Entry{AaGUID: stmt.AaGUID, MetadataStatement: stmt, TimeOfLastStatusChange: since,
		StatusReports: []metadata.StatusReport{{Status: metadata.FidoCertified, EffectiveDate: &since}}}
	mds, err := memory.New(memory.WithMetadata(map[uuid.UUID]*metadata.Entry{stmt.AaGUID: entry}),
		memory.WithValidateEntry(true), memory.WithValidateTrustAnchor(true), memory.WithValidateStatus(true),
		memory.WithValidateAttestationTypes(true), memory.WithValidateAAGUID(true), memory.WithValidateAlgorithms(true),
		memory.WithValidateAttestationFormats(true), memory.WithValidateBackupEligibility(true), memory.WithValidateExtensions(true),
		memory.WithValidateUserVerification(true))
	if err != nil {
		return nil, fmt.Errorf("metadata provider: %w", err)
	}
	origin := "https://" + rpID
	w, err := webauthn.New(&webauthn.Config{RPID: rpID, RPDisplayName: "vkey test RP with MDS", RPOrigins: []string{origin}, MDS: mds})
	if err != nil {
		return nil, fmt.Errorf("webauthn config: %w", err)
	}
	return &RP{ID: rpID, Origin: origin, W: w}, nil
}
