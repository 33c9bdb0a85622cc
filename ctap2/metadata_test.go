package ctap2_test

import (
	"strings"
	"testing"
	"time"

	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/internal/clientsummary"
	"github.com/vkey-dev/vkey/internal/webauthntest"
)

// mdsRP is a go-webauthn relying party that checks attestation against
// the metadata statement stmt.
func mdsRP(t *testing.T, stmt []byte) *webauthntest.RP {
	t.Helper()
	rp, err := webauthntest.NewWithMetadata("example.com", stmt)
	if err != nil {
		t.Fatal(err)
	}
	return rp
}

// TestMetadataStatement (issue 13, `vkey attestation --metadata`): go-webauthn's
// metadata package loads the key's MDS3 statement, and a relying party
// checking attestation against it (trust anchor, AAGUID, algorithms,
// attestation type) accepts the key's registrations in every algorithm,
// while one given the statement of another installation refuses them.
func TestMetadataStatement(t *testing.T) {
	clientsummary.Record(t, "go-webauthn metadata (MDS3)", "vkey attestation --metadata loads; registrations accepted with every metadata check on")
	k := newKey(t, func(o *ctap2.Options) { o.Now = time.Now })
	info, err := k.a.Info()
	if err != nil {
		t.Fatal(err)
	}
	root, err := k.a.AttestationRoot()
	if err != nil {
		t.Fatal(err)
	}
	stmt, err := ctap2.MetadataStatement(info, [][]byte{root}, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"aaguid": "766b6579-2d76-6972-7475-616c2d6b6579"`, `"attestationRootCertificates"`, `"keyProtection"`, `"basic_full"`, `"authenticatorGetInfo"`} {
		if !strings.Contains(string(stmt), want) {
			t.Errorf("statement lacks %s", want)
		}
	}
	rp := mdsRP(t, stmt)
	for _, alg := range []int64{-7, -8, -35, -36, -257, -37} {
		register(t, k, rp, webauthntest.NewUser("alice"), false, alg)
	}

	other := newKey(t, func(o *ctap2.Options) { o.Now = time.Now })
	otherRoot, _ := other.a.AttestationRoot()
	otherStmt, err := ctap2.MetadataStatement(info, [][]byte{otherRoot}, "")
	if err != nil {
		t.Fatal(err)
	}
	rp = mdsRP(t, otherStmt)
	u := webauthntest.NewUser("bob")
	cer, err := rp.BeginRegistration(u)
	if err != nil {
		t.Fatal(err)
	}
	req := mcRequest(t, rp.ID, u.ID, false)
	req.ClientDataHash = cer.ClientDataHash
	att, err := k.c.MakeCredential(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := att.CredentialID()
	if _, err := rp.FinishRegistration(u, cer, id, att.Format, att.AuthData, att.AttStmt); err == nil {
		t.Error("a relying party trusting another installation's root accepted the registration")
	} else {
		t.Logf("refused as it should be: %v", err)
	}
}
