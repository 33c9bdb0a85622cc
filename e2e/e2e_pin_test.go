package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vkey-dev/vkey/internal/clientsummary"
)

// pinInput answers every PIN prompt of a libfido2 tool (they read stdin
// when there is no terminal) with pin.
func pinInput(pin string) string { return strings.Repeat(pin+"\n", 6) }

// TestE2EFido2TokenPINAndManagement drives the CTAP 2.1 management features
// with libfido2's fido2-token over the pty: PIN set/change/retries,
// credentials with a PIN and credProtect, credential listing and deletion,
// large blobs, alwaysUv, minimum PIN length, and reset.
func TestE2EFido2TokenPINAndManagement(t *testing.T) {
	clientsummary.Record(t, "libfido2 tools (fido2-token, fido2-cred, fido2-assert), pty",
		"PIN set/change/retries, credProtect, credential management, large blobs, alwaysUv, minimum PIN length")
	needTool(t, "fido2-token", "fido2-cred", "fido2-assert")
	k := startKey(t, "--ephemeral", "--transport", "pty", "--presence", "auto")
	dev := k.Where
	run := func(input string, args ...string) string {
		t.Helper()
		out, err := tool(t, input, "fido2-token", append(args, dev)...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	run("1234\n1234\n", "-S")
	info := run("", "-I")
	if !strings.Contains(info, " clientPin") || !strings.Contains(info, "pin retries: 8") {
		t.Fatalf("after -S, fido2-token -I shows:\n%s", info)
	}
	run("1234\n567890\n567890\n", "-C")
	if _, err := tool(t, "0000\n", "fido2-token", "-L", "-r", dev); err == nil {
		t.Fatal("listing with a wrong PIN succeeded")
	}
	if info := run("", "-I"); !strings.Contains(info, "pin retries: 7") {
		t.Errorf("one wrong PIN should leave 7 retries:\n%s", info)
	}

	// A discoverable credential with a PIN and credProtect 2, and a largeBlobKey.
	in := filepath.Join(t.TempDir(), "in")
	os.WriteFile(in, []byte(fmt.Sprintf("%s\nexample.com\nalice\n%s\n", randomB64(32), b64([]byte("user-1")))), 0o600)
	made, err := tool(t, pinInput("567890"), "fido2-cred", "-M", "-r", "-c", "2", "-b", "-i", in, dev, "es256")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tool(t, made, "fido2-cred", "-V", "-c", "2", "es256"); err != nil {
		t.Fatalf("fido2-cred -V -c 2: %v", err)
	}
	credID := lines(made)[4]

	rps := run(pinInput("567890"), "-L", "-r")
	if !strings.Contains(rps, "example.com") {
		t.Fatalf("fido2-token -L -r:\n%s", rps)
	}
	creds := run(pinInput("567890"), "-L", "-k", "example.com")
	if !strings.Contains(creds, credID) || !strings.Contains(creds, b64([]byte("user-1"))) || !strings.Contains(creds, "uvopt+id") {
		t.Fatalf("fido2-token -L -k example.com does not list %s:\n%s", credID, creds)
	}
	run(pinInput("567890"), "-S", "-c", "-i", credID, "-k", b64([]byte("user-1")), "-n", "alice2", "-p", "Alice Two")
	if creds := run(pinInput("567890"), "-L", "-k", "example.com"); !strings.Contains(creds, "Alice Two") {
		t.Errorf("user information not updated:\n%s", creds)
	}

	// Large blob: set through the credential's largeBlobKey, read back, delete.
	// Random bytes do not compress: 3000 of them take several fragments.
	blobData := []byte(randomB64(2250))
	blob := filepath.Join(t.TempDir(), "blob")
	os.WriteFile(blob, blobData, 0o600)
	run(pinInput("567890"), "-S", "-b", "-n", "example.com", blob)
	got := filepath.Join(t.TempDir(), "got")
	run(pinInput("567890"), "-G", "-b", "-n", "example.com", got)
	if b, _ := os.ReadFile(got); string(b) != string(blobData) {
		t.Errorf("large blob read back %d bytes, want %d", len(b), len(blobData))
	}
	if list := run(pinInput("567890"), "-L", "-b"); !strings.Contains(list, "example.com") && !strings.Contains(list, "00:") {
		t.Errorf("fido2-token -L -b:\n%s", list)
	}
	run(pinInput("567890"), "-D", "-b", "-n", "example.com")
	if _, err := tool(t, pinInput("567890"), "fido2-token", "-G", "-b", "-n", "example.com", got, dev); err == nil {
		t.Error("the deleted large blob can still be read")
	}

	// Delete the credential.
	run(pinInput("567890"), "-D", "-i", credID)
	if creds, err := tool(t, pinInput("567890"), "fido2-token", "-L", "-k", "example.com", dev); err == nil && strings.Contains(creds, credID) {
		t.Errorf("deleted credential still listed:\n%s", creds)
	}

	// authenticatorConfig: minimum PIN length and alwaysUv.
	run(pinInput("567890"), "-S", "-l", "6")
	if info := run("", "-I"); !strings.Contains(info, "minpinlen: 6") {
		t.Errorf("min PIN length not 6:\n%s", info)
	}
	// Enterprise attestation (-S -a), then alwaysUv on (-S -u) and off (-D -u).
	run(pinInput("567890"), "-S", "-a")
	if info := run("", "-I"); !strings.Contains(info, "options: ep,") {
		t.Errorf("enterprise attestation not on:\n%s", info)
	}
	run(pinInput("567890"), "-S", "-u")
	if info := run("", "-I"); !strings.Contains(info, " alwaysUv") || strings.Contains(info, "noalwaysUv") {
		t.Errorf("alwaysUv not on:\n%s", info)
	}
	// With alwaysUv, a registration without the PIN is refused...
	if _, err := tool(t, "", "fido2-cred", "-M", "-q", "-i", in, dev, "es256"); err == nil {
		t.Error("alwaysUv: a registration without user verification succeeded")
	}
	run(pinInput("567890"), "-D", "-u")
	if info := run("", "-I"); !strings.Contains(info, "noalwaysUv") {
		t.Errorf("alwaysUv not off:\n%s", info)
	}
}

// TestE2EFido2TokenReset: reset within 10 seconds of power-up wipes the key.
func TestE2EFido2TokenReset(t *testing.T) {
	clientsummary.Record(t, "libfido2 tools (fido2-token), pty", "reset")
	needTool(t, "fido2-token")
	k := startKey(t, "--ephemeral", "--transport", "pty", "--presence", "auto")
	if _, err := tool(t, "1234\n1234\n", "fido2-token", "-S", k.Where); err != nil {
		t.Fatal(err)
	}
	if _, err := tool(t, "", "fido2-token", "-R", k.Where); err != nil {
		t.Fatal(err)
	}
	info, err := tool(t, "", "fido2-token", "-I", k.Where)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(info, "noclientPin") {
		t.Errorf("after reset the PIN should be gone:\n%s", info)
	}
}
