package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/vkey-dev/vkey/internal/clientsummary"
	"github.com/vkey-dev/vkey/internal/keyproc"
	"github.com/vkey-dev/vkey/internal/swtpmtest"
	"github.com/vkey-dev/vkey/internal/webauthntest"
)

// webauthnCLI runs `vkey webauthn ARGS` with options on stdin and returns
// stdout and the exit status.
func webauthnCLI(t *testing.T, env []string, options []byte, args ...string) ([]byte, int) {
	t.Helper()
	cmd := exec.Command(keyproc.Binary(t), append([]string{"webauthn"}, args...)...)
	cmd.Env = env
	cmd.Stdin = bytes.NewReader(options)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out, ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("vkey webauthn: %v\n%s", err, stderr.String())
	}
	return out, 0
}

// domError is the name of the --json error on stdout.
func domError(t *testing.T, out []byte) string {
	t.Helper()
	var e struct {
		Error struct{ Name string } `json:"error"`
	}
	if err := json.Unmarshal(out, &e); err != nil {
		t.Fatalf("no JSON error on stdout: %v\n%s", err, out)
	}
	return e.Error.Name
}

// TestE2EWebAuthnCLIDevice: `vkey webauthn` against a running vkey (on a
// pty) gives go-webauthn a registration and a sign-in it accepts; a key
// whose user refuses the touch gives NotAllowedError.
func TestE2EWebAuthnCLIDevice(t *testing.T) {
	k := startKey(t, "--ephemeral", "--transport", "pty", "--presence", "auto")
	rp, err := webauthntest.New("example.com")
	if err != nil {
		t.Fatal(err)
	}
	u := webauthntest.NewUser("alice")
	opts, session, err := rp.W.BeginRegistration(u)
	if err != nil {
		t.Fatal(err)
	}
	optsJSON, _ := json.Marshal(opts)
	out, code := webauthnCLI(t, k.Env, optsJSON, "create", "--device", k.Where, "--origin", rp.Origin)
	if code != 0 {
		t.Fatalf("create: exit %d\n%s", code, out)
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(out)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := rp.W.CreateCredential(u, *session, parsed)
	if err != nil {
		t.Fatalf("go-webauthn rejected the registration: %v", err)
	}
	u.Credentials = append(u.Credentials, *cred)
	login, session, err := rp.W.BeginLogin(u)
	if err != nil {
		t.Fatal(err)
	}
	loginJSON, _ := json.Marshal(login)
	// No --device: the one running vkey.
	out, code = webauthnCLI(t, k.Env, loginJSON, "get", "--origin", rp.Origin)
	if code != 0 {
		t.Fatalf("get: exit %d\n%s", code, out)
	}
	assertion, err := protocol.ParseCredentialRequestResponseBytes(out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rp.W.ValidateLogin(u, *session, assertion); err != nil {
		t.Fatalf("go-webauthn rejected the assertion: %v", err)
	}

	// Over UDP (the simulator transport) as over the pty.
	udp := startKey(t, "--ephemeral", "--transport", "udp", "--udp-addr", "127.0.0.1:0", "--presence", "auto")
	bob := webauthntest.NewUser("bob")
	opts, session, err = rp.W.BeginRegistration(bob)
	if err != nil {
		t.Fatal(err)
	}
	udpJSON, _ := json.Marshal(opts)
	out, code = webauthnCLI(t, udp.Env, udpJSON, "create", "--device", udp.Where, "--origin", rp.Origin)
	if code != 0 {
		t.Fatalf("create over UDP: exit %d\n%s", code, out)
	}
	if parsed, err = protocol.ParseCredentialCreationResponseBytes(out); err != nil {
		t.Fatal(err)
	}
	if _, err := rp.W.CreateCredential(bob, *session, parsed); err != nil {
		t.Fatalf("go-webauthn rejected the registration over UDP: %v", err)
	}

	deny := startKey(t, "--ephemeral", "--transport", "pty", "--presence", "deny")
	out, code = webauthnCLI(t, deny.Env, optsJSON, "create", "--device", deny.Where, "--origin", rp.Origin, "--json")
	if code != exitError || domError(t, out) != "NotAllowedError" {
		t.Fatalf("denied touch: exit %d, %s; want 1 and NotAllowedError", code, out)
	}

	// Nobody touches: the options' timeout passes, NotAllowedError, exit 6.
	wait := startKey(t, "--ephemeral", "--transport", "pty", "--presence", "touch")
	var short map[string]map[string]any
	_ = json.Unmarshal(optsJSON, &short)
	short["publicKey"]["timeout"] = 300
	shortJSON, _ := json.Marshal(short)
	out, code = webauthnCLI(t, wait.Env, shortJSON, "create", "--device", wait.Where, "--origin", rp.Origin, "--json")
	if code != exitTimeout || domError(t, out) != "NotAllowedError" {
		t.Fatalf("untouched key: exit %d, %s; want 6 and NotAllowedError", code, out)
	}
}

// TestE2EWebAuthnCLIEphemeral: --ephemeral --state keeps the credential
// between calls, a PIN from VKEY_PIN verifies the user, and the exit
// statuses are those of the other commands.
func TestE2EWebAuthnCLIEphemeral(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	env := append(os.Environ(), "XDG_RUNTIME_DIR="+t.TempDir(), "VKEY_PIN=4321")
	w, err := webauthn.New(&webauthn.Config{RPID: "example.com", RPDisplayName: "Example", RPOrigins: []string{"https://example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	u := webauthntest.NewUser("alice")
	opts, session, err := w.BeginRegistration(u, webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{UserVerification: protocol.VerificationRequired}))
	if err != nil {
		t.Fatal(err)
	}
	optsJSON, _ := json.Marshal(opts)
	out, code := webauthnCLI(t, env, optsJSON, "create", "--ephemeral", "--state", state, "--origin", "https://example.com")
	if code != 0 {
		t.Fatalf("create: exit %d\n%s", code, out)
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(out)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := w.CreateCredential(u, *session, parsed)
	if err != nil || !cred.Flags.UserVerified {
		t.Fatalf("registration: %v, flags %+v", err, cred)
	}
	u.Credentials = append(u.Credentials, *cred)
	login, session, err := w.BeginLogin(u, webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		t.Fatal(err)
	}
	loginJSON, _ := json.Marshal(login)
	out, code = webauthnCLI(t, env, loginJSON, "get", "--ephemeral", "--state", state, "--origin", "https://example.com")
	if code != 0 {
		t.Fatalf("get: exit %d\n%s", code, out)
	}
	assertion, err := protocol.ParseCredentialRequestResponseBytes(out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.ValidateLogin(u, *session, assertion); err != nil {
		t.Fatalf("go-webauthn rejected the assertion from the kept state: %v", err)
	}

	wrongPIN := append(os.Environ(), "XDG_RUNTIME_DIR="+t.TempDir(), "VKEY_PIN=0000")
	out, code = webauthnCLI(t, wrongPIN, loginJSON, "get", "--ephemeral", "--state", state, "--origin", "https://example.com", "--json")
	if code != exitPINInvalid || domError(t, out) != "NotAllowedError" {
		t.Fatalf("wrong PIN: exit %d, %s; want 3 and NotAllowedError", code, out)
	}
	out, code = webauthnCLI(t, env, loginJSON, "get", "--ephemeral", "--origin", "https://evil.example.net", "--json")
	if code != exitError || domError(t, out) != "SecurityError" {
		t.Fatalf("wrong origin: exit %d, %s; want 1 and SecurityError", code, out)
	}
	if _, code = webauthnCLI(t, env, loginJSON, "get", "--state", state, "--origin", "https://example.com"); code != exitUsage {
		t.Fatalf("--state without --ephemeral: exit %d, want 2", code)
	}
	if _, code = webauthnCLI(t, env, loginJSON, "get", "--ephemeral"); code != exitUsage {
		t.Fatalf("no --origin: exit %d, want 2", code)
	}
}

// TestE2EWebAuthnPythonFido2Server: Debian's python3-fido2 Fido2Server,
// through `vkey webauthn`, accepts registrations and sign-ins and sees the
// browser's error names (testdata/python/webauthn_cli.py); with swtpm, it
// verifies a TPM-backed key's tpm attestation to the key's root.
func TestE2EWebAuthnPythonFido2Server(t *testing.T) {
	clientsummary.Record(t, "python3-fido2 Fido2Server (relying party), vkey webauthn",
		"registrations and sign-ins verified, error names; tpm attestation with swtpm")
	needTool(t, "/usr/bin/python3")
	if err := exec.Command("/usr/bin/python3", "-c", "import fido2").Run(); err != nil {
		t.Skip("python3-fido2 is not installed (make deps installs it)")
	}
	script, _ := filepath.Abs("../testdata/python/webauthn_cli.py")
	runRPScript(t, "python3-fido2", exec.Command("/usr/bin/python3", script))
}

// tpmKeyEnv starts swtpm and a TPM-backed `vkey run --keys tpm
// --attestation tpm` on a pty, and returns the environment that gives a
// relying party's script its device (VKEY_TPM_DEVICE) and attestation root
// in PEM (VKEY_TPM_ROOT, from `vkey attestation`). Without swtpm it returns
// nothing, and the scripts say they skip their tpm case.
func tpmKeyEnv(t *testing.T) []string {
	t.Helper()
	if _, err := exec.LookPath("swtpm"); err != nil {
		t.Log("swtpm not on PATH (apt-get install swtpm): the tpm attestation case is skipped")
		return nil
	}
	tpm := swtpmtest.Start(t)
	k := startKey(t, "--ephemeral", "--transport", "pty", "--keys", "tpm", "--tpm", tpm.Spec(),
		"--attestation", "tpm", "--presence", "auto")
	root := filepath.Join(t.TempDir(), "root.pem")
	cmd := exec.Command(keyproc.Binary(t), "attestation", "--out", root)
	cmd.Env = k.Env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("vkey attestation: %v\n%s", err, out)
	}
	return []string{"VKEY_TPM_DEVICE=" + k.Where, "VKEY_TPM_ROOT=" + root}
}

// runRPScript runs a relying party's test script against the vkey binary
// ($VKEY_BIN) with private runtime and temporary folders, and a TPM-backed
// key for its tpm attestation case (tpmKeyEnv), and logs what it says.
func runRPScript(t *testing.T, rp string, cmd *exec.Cmd) {
	t.Helper()
	cmd.Env = append(os.Environ(), "VKEY_BIN="+keyproc.Binary(t), "XDG_RUNTIME_DIR="+t.TempDir(), "TMPDIR="+t.TempDir())
	cmd.Env = append(cmd.Env, tpmKeyEnv(t)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s failed: %v\n%s", rp, err, out)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		t.Log(l)
	}
}

// TestE2EWebAuthnSimpleWebAuthn: @simplewebauthn/server (npm), through
// `vkey webauthn`, accepts registrations and sign-ins and sees the
// browser's error names (testdata/node/webauthn_cli.mjs); with swtpm, it
// verifies a TPM-backed key's tpm attestation to the key's root.
func TestE2EWebAuthnSimpleWebAuthn(t *testing.T) {
	clientsummary.Record(t, "@simplewebauthn/server (relying party), vkey webauthn",
		"registrations and sign-ins verified, error names; tpm attestation with swtpm")
	needTool(t, "node")
	dir, _ := filepath.Abs("../testdata/node")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@simplewebauthn", "server")); err != nil {
		t.Skip("@simplewebauthn/server is not installed (make deps installs it into testdata/node)")
	}
	cmd := exec.Command("node", "webauthn_cli.mjs")
	cmd.Dir = dir
	runRPScript(t, "@simplewebauthn/server", cmd)
}
