package ctap2_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"testing"

	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/ctap2/client"
)

// cmKey is a key with a PIN and discoverable credentials: two for
// example.com (users 1 and 2), one for other.example (user 3), plus a
// non-discoverable one for example.com that credential management must
// not see. mutate changes the key's options, as for newKey.
func cmKey(t *testing.T, mutate ...func(*ctap2.Options)) *testKey {
	t.Helper()
	k := newKey(t, mutate...)
	ctx := context.Background()
	wantStatus(t, k.c.SetPIN(ctx, 2, "1234"), ctap2.StatusOK)
	for _, c := range []struct {
		rp   string
		user byte
		rk   bool
	}{{"example.com", 1, true}, {"example.com", 2, true}, {"other.example", 3, true}, {"example.com", 4, false}} {
		tok, err := k.c.PINToken(ctx, 2, "1234", ctap2.PermMakeCredential, c.rp)
		if err != nil {
			t.Fatal(err)
		}
		req := mcRequest(t, c.rp, []byte{c.user}, c.rk)
		req.PinUvAuthParam, req.PinUvAuthProtocol = tok.Param(req.ClientDataHash), tok.Version()
		if _, err := k.c.MakeCredential(ctx, req); err != nil {
			t.Fatalf("makeCredential %s/%d: %v", c.rp, c.user, err)
		}
	}
	return k
}

// cm returns a credential manager with a token with the cm permission,
// bound to rpID if it is not empty.
func (k *testKey) cm(t *testing.T, rpID string) *client.CredMgmt {
	t.Helper()
	tok, err := k.c.PINToken(context.Background(), 2, "1234", ctap2.PermCredentialMgmt, rpID)
	if err != nil {
		t.Fatal(err)
	}
	return k.c.CredentialManagement(tok, false)
}

// cmSub sends a credentialManagement subcommand without parameters or
// token and returns the status.
func (k *testKey) cmSub(t *testing.T, sub uint64) ctap2.Status {
	t.Helper()
	st, _ := k.raw(ctap2.CmdCredentialManagement, mustCBOR(t, map[int]any{1: sub}))
	return st
}

func TestCredMgmtEnumerate(t *testing.T) {
	k := cmKey(t)
	ctx := context.Background()
	m := k.cm(t, "")
	existing, remaining, err := m.Metadata(ctx)
	if err != nil || existing != 3 || remaining == 0 {
		t.Fatalf("metadata: %d existing, %d remaining, %v; want 3 existing", existing, remaining, err)
	}
	rps, err := m.RPs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rps) != 2 || rps[0].ID != "example.com" || rps[1].ID != "other.example" {
		t.Fatalf("RPs %+v", rps)
	}
	for _, rp := range rps {
		if h := sha256.Sum256([]byte(rp.ID)); !bytes.Equal(rp.IDHash, h[:]) {
			t.Errorf("rpIDHash of %s is not its SHA-256", rp.ID)
		}
	}
	creds, err := m.Credentials(ctx, rps[0])
	if err != nil {
		t.Fatal(err)
	}
	var users []byte
	for _, c := range creds {
		users = append(users, c.User.ID[0])
		if c.Algorithm() != -7 || c.CredProtect != 1 || c.User.Name != "alice" {
			t.Errorf("credential %+v", c)
		}
	}
	if len(users) != 2 || !bytes.Contains(users, []byte{1}) || !bytes.Contains(users, []byte{2}) {
		t.Errorf("example.com users %v, want 1 and 2 (not the non-discoverable 4)", users)
	}
	// An RP without credentials.
	if cs, err := m.Credentials(ctx, client.RPByID("none.example")); err != nil || cs != nil {
		t.Errorf("credentials of an unknown RP: %v, %v", cs, err)
	}
	// The preview command code answers the same.
	tok, _ := k.c.PINToken(ctx, 2, "1234", ctap2.PermCredentialMgmt, "")
	if all, err := k.c.CredentialManagement(tok, true).All(ctx); err != nil || len(all) != 3 {
		t.Errorf("All over 0x41: %d credentials, %v", len(all), err)
	}
}

func TestCredMgmtEnumerationState(t *testing.T) {
	k := cmKey(t)
	ctx := context.Background()
	// GetNext without a Begin.
	if st := k.cmSub(t, ctap2.CredMgmtEnumerateRPsGetNextRP); st != ctap2.ErrNotAllowed {
		t.Errorf("getNextRP without begin: %v", st)
	}
	if st := k.cmSub(t, ctap2.CredMgmtEnumerateCredentialsGetNext); st != ctap2.ErrNotAllowed {
		t.Errorf("getNextCredential without begin: %v", st)
	}
	begin := func() {
		t.Helper()
		tok, _ := k.c.PINToken(ctx, 2, "1234", ctap2.PermCredentialMgmt, "")
		st, _ := k.raw(ctap2.CmdCredentialManagement, mustCBOR(t, map[int]any{
			1: ctap2.CredMgmtEnumerateRPsBegin, 3: tok.Version(),
			4: tok.Param(ctap2.CredMgmtAuthMessage(ctap2.CredMgmtEnumerateRPsBegin, nil))}))
		if st != ctap2.StatusOK {
			t.Fatalf("enumerateRPsBegin: %v", st)
		}
	}
	// Two RPs: one GetNext, then the list is over.
	begin()
	if st := k.cmSub(t, ctap2.CredMgmtEnumerateRPsGetNextRP); st != ctap2.StatusOK {
		t.Errorf("getNextRP: %v", st)
	}
	if st := k.cmSub(t, ctap2.CredMgmtEnumerateRPsGetNextRP); st != ctap2.ErrNotAllowed {
		t.Errorf("getNextRP past the end: %v", st)
	}
	// Another command ends the enumeration.
	begin()
	if st, _ := k.raw(ctap2.CmdGetInfo, nil); st != ctap2.StatusOK {
		t.Fatal(st)
	}
	if st := k.cmSub(t, ctap2.CredMgmtEnumerateRPsGetNextRP); st != ctap2.ErrNotAllowed {
		t.Errorf("getNextRP after getInfo: %v, want CTAP2_ERR_NOT_ALLOWED", st)
	}
	// So does a power cycle.
	begin()
	k.a.PowerCycle()
	if st := k.cmSub(t, ctap2.CredMgmtEnumerateRPsGetNextRP); st != ctap2.ErrNotAllowed {
		t.Errorf("getNextRP after a power cycle: %v", st)
	}
}

func TestCredMgmtAuthorization(t *testing.T) {
	k := cmKey(t)
	ctx := context.Background()
	// No token at all, an unknown subcommand, a missing one.
	if st := k.cmSub(t, ctap2.CredMgmtGetCredsMetadata); st != ctap2.ErrPUATRequired {
		t.Errorf("metadata without a token: %v", st)
	}
	if st := k.cmSub(t, 0x20); st != ctap2.ErrInvalidSubcommand {
		t.Errorf("subcommand 0x20: %v", st)
	}
	if st, _ := k.raw(ctap2.CmdCredentialManagement, mustCBOR(t, map[int]any{3: 2})); st != ctap2.ErrMissingParameter {
		t.Errorf("no subcommand: %v", st)
	}
	// A token without the cm permission.
	tok, _ := k.c.PINToken(ctx, 2, "1234", ctap2.PermGetAssertion, "example.com")
	_, _, err := k.c.CredentialManagement(tok, false).Metadata(ctx)
	wantStatus(t, err, ctap2.ErrPINAuthInvalid)
	// A token bound to one RP: whole-key operations and other RPs are
	// refused, its own RP is served.
	bound := k.cm(t, "example.com")
	_, _, err = bound.Metadata(ctx)
	wantStatus(t, err, ctap2.ErrPINAuthInvalid)
	_, err = bound.RPs(ctx)
	wantStatus(t, err, ctap2.ErrPINAuthInvalid)
	_, err = bound.Credentials(ctx, client.RPByID("other.example"))
	wantStatus(t, err, ctap2.ErrPINAuthInvalid)
	creds, err := bound.Credentials(ctx, client.RPByID("example.com"))
	if err != nil || len(creds) != 2 {
		t.Fatalf("credentials with a bound token: %d, %v", len(creds), err)
	}
	other, err := k.cm(t, "").Credentials(ctx, client.RPByID("other.example"))
	if err != nil || len(other) != 1 {
		t.Fatal(other, err)
	}
	wantStatus(t, bound.Delete(ctx, other[0].ID), ctap2.ErrPINAuthInvalid)
	// A wrong pinUvAuthParam.
	st, _ := k.raw(ctap2.CmdCredentialManagement, mustCBOR(t, map[int]any{
		1: ctap2.CredMgmtGetCredsMetadata, 3: 2, 4: bytes.Repeat([]byte{7}, 32)}))
	if st != ctap2.ErrPINAuthInvalid {
		t.Errorf("wrong pinUvAuthParam: %v", st)
	}
}

func TestCredMgmtDeleteAndUpdate(t *testing.T) {
	k := cmKey(t)
	ctx := context.Background()
	m := k.cm(t, "")
	creds, err := m.Credentials(ctx, client.RPByID("example.com"))
	if err != nil || len(creds) != 2 {
		t.Fatal(creds, err)
	}
	victim, kept := creds[0], creds[1]

	// updateUserInformation: the user ID must match; names change.
	wantStatus(t, m.UpdateUser(ctx, kept.ID, ctap2.UserEntity{ID: []byte{99}, Name: "mallory"}), ctap2.ErrInvalidParameter)
	wantStatus(t, m.UpdateUser(ctx, kept.ID, ctap2.UserEntity{ID: kept.User.ID, Name: "bob", DisplayName: "Bob"}), ctap2.StatusOK)
	after, _ := m.Credentials(ctx, client.RPByID("example.com"))
	for _, c := range after {
		if bytes.Equal(c.ID, kept.ID) && (c.User.Name != "bob" || c.User.DisplayName != "Bob") {
			t.Errorf("updated user %+v", c.User)
		}
	}

	// deleteCredential: gone from enumeration and from getAssertion, and
	// a second delete finds nothing.
	wantStatus(t, m.Delete(ctx, victim.ID), ctap2.StatusOK)
	wantStatus(t, m.Delete(ctx, victim.ID), ctap2.ErrNoCredentials)
	wantStatus(t, m.UpdateUser(ctx, victim.ID, victim.User), ctap2.ErrNoCredentials)
	existing, _, err := m.Metadata(ctx)
	if err != nil || existing != 2 {
		t.Errorf("metadata after delete: %d, %v", existing, err)
	}
	_, err = k.c.GetAssertion(ctx, &ctap2.GetAssertionRequest{RPID: "example.com", ClientDataHash: make([]byte, 32),
		AllowList: []ctap2.CredentialDescriptor{{Type: "public-key", ID: victim.ID}}})
	wantStatus(t, err, ctap2.ErrNoCredentials)
	// Credential management cannot delete a non-discoverable credential.
	att, err := k.c.MakeCredential(ctx, mcRequest(t, "example.com", []byte{5}, false))
	if err != nil {
		t.Fatal(err)
	}
	id, _ := att.CredentialID()
	// The presence that makeCredential collected cleared the token's
	// permissions (CTAP 2.1 section 6.1.2, clearPinUvAuthTokenPermissionsExceptLbw).
	wantStatus(t, m.Delete(ctx, id), ctap2.ErrPINAuthInvalid)
	m = k.cm(t, "")
	wantStatus(t, m.Delete(ctx, id), ctap2.ErrNoCredentials)
	// The last credential of an RP takes the RP out of the list.
	other, _ := m.Credentials(ctx, client.RPByID("other.example"))
	wantStatus(t, m.Delete(ctx, other[0].ID), ctap2.StatusOK)
	if rps, err := m.RPs(ctx); err != nil || len(rps) != 1 || rps[0].ID != "example.com" {
		t.Errorf("RPs after deleting other.example's credential: %+v, %v", rps, err)
	}
}

// TestGetNextAssertionAfterRemoval checks getNextAssertion when a credential
// of the sequence disappears from the store meanwhile: that assertion fails
// with CTAP2_ERR_NO_CREDENTIALS and the sequence goes on with the next one.
// Removing a credential through the authenticator (the control API) ends
// the sequence instead.
func TestGetNextAssertionAfterRemoval(t *testing.T) {
	k := newKey(t)
	ctx := context.Background()
	var ids [][]byte
	for i := byte(1); i <= 3; i++ {
		att, err := k.c.MakeCredential(ctx, mcRequest(t, "example.com", []byte{i}, true))
		if err != nil {
			t.Fatal(err)
		}
		id, _ := att.CredentialID()
		ids = append(ids, id)
		k.clock.Advance(1)
	}
	getAssertion := func() {
		t.Helper()
		first, err := k.c.GetAssertion(ctx, &ctap2.GetAssertionRequest{RPID: "example.com", ClientDataHash: make([]byte, 32)})
		if err != nil || first.NumberOfCredentials < 2 {
			t.Fatalf("getAssertion: %+v, %v", first, err)
		}
	}
	// Newest first: user 3, then 2, then 1. The store loses user 2's.
	getAssertion()
	if err := k.store.DeleteCredential(ids[1]); err != nil {
		t.Fatal(err)
	}
	_, err := k.c.GetNextAssertion(ctx)
	wantStatus(t, err, ctap2.ErrNoCredentials)
	next, err := k.c.GetNextAssertion(ctx)
	if err != nil || next.User.ID[0] != 1 {
		t.Fatalf("getNextAssertion after the lost one: %+v, %v", next, err)
	}
	_, err = k.c.GetNextAssertion(ctx)
	wantStatus(t, err, ctap2.ErrNotAllowed)

	getAssertion()
	if err := k.a.RemoveCredential(ids[0]); err != nil {
		t.Fatal(err)
	}
	_, err = k.c.GetNextAssertion(ctx)
	wantStatus(t, err, ctap2.ErrNotAllowed)
}
