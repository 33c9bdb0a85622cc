package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vkey-dev/vkey/internal/clientsummary"
)

// TestE2EFido2AssertPINSeveralAccounts (issue 16): libfido2's fido2-assert
// -G with a PIN against a key holding several discoverable credentials for
// the RP gets one verified assertion per account, each with UV, through
// getAssertion and getNextAssertion.
func TestE2EFido2AssertPINSeveralAccounts(t *testing.T) {
	clientsummary.Record(t, "libfido2 fido2-assert, pty, PIN", "sign-in with a PIN over several accounts of one RP")
	needTool(t, "fido2-token", "fido2-cred", "fido2-assert")
	k := startKey(t, "--ephemeral", "--transport", "pty", "--presence", "auto")
	dev, dir := k.Where, t.TempDir()
	if _, err := tool(t, "1234\n1234\n", "fido2-token", "-S", dev); err != nil {
		t.Fatal(err)
	}
	pubkeys := map[string]string{} // user ID (base64) -> PEM file
	for i := range 3 {
		user := b64([]byte(fmt.Sprintf("user-%d", i)))
		in := filepath.Join(dir, fmt.Sprintf("cred%d", i))
		if err := os.WriteFile(in, []byte(fmt.Sprintf("%s\nexample.com\nuser%d\n%s\n", randomB64(32), i, user)), 0o600); err != nil {
			t.Fatal(err)
		}
		made, err := tool(t, pinInput("1234"), "fido2-cred", "-M", "-r", "-i", in, dev, "es256")
		if err != nil {
			t.Fatal(err)
		}
		out, err := tool(t, made, "fido2-cred", "-V", "es256")
		if err != nil {
			t.Fatalf("fido2-cred -V: %v", err)
		}
		pub := filepath.Join(dir, fmt.Sprintf("pub%d.pem", i))
		if err := os.WriteFile(pub, []byte(strings.Join(lines(out)[1:], "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		pubkeys[user] = pub
	}
	in := filepath.Join(dir, "assert")
	if err := os.WriteFile(in, []byte(randomB64(32)+"\nexample.com\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := tool(t, pinInput("1234"), "fido2-assert", "-G", "-r", "-v", "-i", in, dev)
	if err != nil {
		t.Fatal(err)
	}
	// Each assertion: client data hash, RP ID, authenticator data,
	// signature, user ID.
	l := lines(got)
	if len(l) != 15 {
		t.Fatalf("fido2-assert -G -r -v printed %d lines, want 3 assertions of 5:\n%s", len(l), got)
	}
	seen := map[string]bool{}
	for i := 0; i < len(l); i += 5 {
		user := l[i+4]
		pub, ok := pubkeys[user]
		if !ok || seen[user] {
			t.Fatalf("assertion %d for user %q: not one of the three accounts, or twice", i/5, user)
		}
		seen[user] = true
		if _, err := tool(t, strings.Join(l[i:i+4], "\n")+"\n", "fido2-assert", "-V", "-v", pub, "es256"); err != nil {
			t.Errorf("fido2-assert -V -v rejected the assertion of %s: %v", user, err)
		}
	}
}
