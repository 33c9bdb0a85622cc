package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/ctap2/client"
	"github.com/vkey-dev/vkey/hid"
	"github.com/vkey-dev/vkey/internal/clientsummary"
	"github.com/vkey-dev/vkey/internal/control"
	"github.com/vkey-dev/vkey/internal/keyproc"
	"github.com/vkey-dev/vkey/internal/webauthntest"
)

// These tests cover issue 7 end to end: every management command of the
// CLI against a `vkey run` child process on UDP and on a pty, golden files
// of their --json output, the control API driven as a CI harness would,
// and agreement with libfido2's tools and go-webauthn.

var updateGolden = flag.Bool("update-golden", false, "rewrite e2e/testdata/golden from the CLI tests' output")

// mkey is a running `vkey run` with its own name, runtime folder and
// state (the harness of internal/e2e), and the CLI calls that reach it.
type mkey struct{ *keyproc.Key }

// startManagedKey runs `vkey run --name NAME args...` in a fresh runtime
// folder (so its control socket is the only one) and waits for it.
func startManagedKey(t *testing.T, name string, args ...string) *mkey {
	t.Helper()
	return &mkey{keyproc.Start(t, keyproc.Options{Name: name}, args...)}
}

func (k *mkey) api() *control.Client { return control.NewUnixClient(k.Socket()) }

// cliResult is what one vkey command did.
type cliResult struct {
	stdout, stderr string
	code           int
}

// vk runs the vkey CLI against the key's runtime folder, without a
// terminal (so secrets come from env), with stdin.
func (k *mkey) vk(t *testing.T, env []string, stdin string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, keyproc.Binary(t), args...)
	cmd.Env = append(append(os.Environ(), "XDG_RUNTIME_DIR="+k.Runtime, "XDG_DATA_HOME="+filepath.Join(k.Runtime, "data")), env...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // no controlling terminal
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := cliResult{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("vkey %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// ok runs vk and requires exit status 0.
func (k *mkey) ok(t *testing.T, env []string, args ...string) string {
	t.Helper()
	r := k.vk(t, env, "", args...)
	if r.code != 0 {
		t.Fatalf("vkey %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// fails runs vk and requires exit status code and a message containing msg.
func (k *mkey) fails(t *testing.T, env []string, code int, msg string, args ...string) {
	t.Helper()
	r := k.vk(t, env, "", args...)
	if r.code != code || !strings.Contains(r.stderr, msg) {
		t.Errorf("vkey %s: exit %d, stderr %q; want exit %d and %q", strings.Join(args, " "), r.code, r.stderr, code, msg)
	}
}

// ctapClient dials the key; the caller closes it before the CLI uses the
// device (a pty has room for one host at a time).
func (k *mkey) ctapClient(t *testing.T) (*client.Client, func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := hid.Dial(ctx, k.Where)
	if err != nil {
		t.Fatal(err)
	}
	return client.New(c), func() { c.Close() }
}

// golden compares JSON output, normalised, with testdata/golden/NAME.json.
func golden(t *testing.T, name, got string, norm *normaliser) {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(got), &v); err != nil {
		t.Fatalf("%s: output is not JSON: %v\n%s", name, err, got)
	}
	v = norm.walk("", v)
	b, _ := json.MarshalIndent(v, "", "  ")
	b = append(b, '\n')
	path := filepath.Join("testdata", "golden", name+".json")
	if *updateGolden {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/vkey -run %s -update-golden to create it)", err, t.Name())
	}
	if !bytes.Equal(want, b) {
		t.Errorf("%s differs from %s:\n--- got\n%s--- want\n%s", name, path, b, want)
	}
}

// normaliser replaces what differs between runs: random credential IDs
// (numbered in order of appearance), the device address, PIDs, paths.
type normaliser struct {
	ids map[string]string
	k   *mkey
}

func newNormaliser(k *mkey) *normaliser { return &normaliser{ids: map[string]string{}, k: k} }

// id returns the stable name of a credential ID.
func (n *normaliser) id(s string) string {
	if v, ok := n.ids[s]; ok {
		return v
	}
	v := fmt.Sprintf("CREDENTIAL-%d", len(n.ids)+1)
	n.ids[s] = v
	return v
}

func (n *normaliser) walk(key string, v any) any {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if k == "devices" {
				x[k] = []any{} // hidraw FIDO devices of the machine vary
				continue
			}
			x[k] = n.walk(k, x[k])
		}
		return x
	case []any:
		for i := range x {
			x[i] = n.walk(key, x[i])
		}
		return x
	case string:
		switch key {
		case "credentialId":
			return n.id(x)
		case "device", "transport":
			if x == n.k.Where {
				return "DEVICE"
			}
		case "socket":
			if x == n.k.Socket() {
				return "SOCKET"
			}
		case "file":
			return filepath.Base(x)
		}
		return x
	case float64:
		if key == "pid" {
			return 0
		}
	}
	return v
}

func esParam(alg int64) []ctap2.CredentialParameter {
	return []ctap2.CredentialParameter{{Type: "public-key", Alg: alg}}
}

// register makes a credential with the platform client (on a key without
// PIN, so no token is needed).
func register(t *testing.T, c *client.Client, rp, user string, alg int64, rk, largeBlob bool) []byte {
	t.Helper()
	req := &ctap2.MakeCredentialRequest{
		ClientDataHash: client.ClientDataHash([]byte(rp + user)), RP: &ctap2.RPEntity{ID: rp, Name: rp},
		User:             &ctap2.UserEntity{ID: []byte("id-" + user), Name: user, DisplayName: strings.ToUpper(user)},
		PubKeyCredParams: esParam(alg), Options: map[string]bool{"rk": rk},
	}
	if largeBlob {
		req.Extensions = ctap2.MakeCredentialExtensions{LargeBlobKey: true}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	att, err := c.MakeCredential(ctx, req)
	if err != nil {
		t.Fatalf("makeCredential for %s: %v", rp, err)
	}
	id, err := att.CredentialID()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// credsList runs `vkey creds list --json` and decodes it.
func credsList(t *testing.T, k *mkey, env []string, args ...string) (string, credsListJSON) {
	t.Helper()
	out := k.ok(t, env, append([]string{"creds", "list", "--json"}, args...)...)
	var v credsListJSON
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("creds list --json: %v\n%s", err, out)
	}
	return out, v
}

func decodeInfo(t *testing.T, out string) infoJSON {
	t.Helper()
	var v infoJSON
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("info --json: %v\n%s", err, out)
	}
	return v
}

// TestCLIManagement runs every management command against a key on UDP
// and on a pty.
func TestCLIManagement(t *testing.T) {
	for _, transport := range []string{"udp", "pty"} {
		t.Run(transport, func(t *testing.T) {
			args := []string{"--ephemeral", "--transport", transport, "--presence", "auto"}
			if transport == "udp" {
				args = append(args, "--udp-addr", "127.0.0.1:0")
			}
			k := startManagedKey(t, "mgmt", args...)
			testManagement(t, k)
		})
	}
}

func testManagement(t *testing.T, k *mkey) {
	norm := newNormaliser(k)
	pin1 := []string{"VKEY_PIN=123456"}

	// Discovery and getInfo.
	golden(t, "devices", k.ok(t, nil, "devices", "--json"), norm)
	if out := k.ok(t, nil, "devices"); !strings.Contains(out, "vkey  "+k.Where) || !strings.Contains(out, "KIND") {
		t.Errorf("devices table:\n%s", out)
	}
	golden(t, "info", k.ok(t, nil, "info", "--json"), norm)
	if out := k.ok(t, nil, "info", "--device", k.Name); !strings.Contains(out, "aaguid:") || !strings.Contains(out, "766b6579-2d76-6972-7475-616c2d6b6579") {
		t.Errorf("info table:\n%s", out)
	}
	if out := k.ok(t, nil, "info", "--json", "--device", k.Where); decodeInfo(t, out).Device != k.Where {
		t.Errorf("info --device %s:\n%s", k.Where, out)
	}
	golden(t, "pin-retries-unset", k.ok(t, nil, "pin", "retries", "--json"), norm)
	k.fails(t, nil, 1, "this key has no PIN", "creds", "list")

	// Credentials made by a platform before the PIN exists.
	c, closeC := k.ctapClient(t)
	alice := register(t, c, "example.com", "alice", -7, true, true)
	bob := register(t, c, "other.org", "bob", -8, true, false)
	register(t, c, "example.com", "nondiscoverable", -7, false, false)
	closeC()

	// PIN.
	k.ok(t, []string{"VKEY_NEW_PIN=123456"}, "pin", "set")
	k.fails(t, []string{"VKEY_NEW_PIN=123456"}, 1, "has a PIN already", "pin", "set")
	k.fails(t, []string{"VKEY_PIN=000000", "VKEY_NEW_PIN=654321"}, exitPINInvalid, "wrong PIN", "pin", "change")
	golden(t, "pin-retries-set", k.ok(t, nil, "pin", "retries", "--json"), norm)
	pinFile := filepath.Join(t.TempDir(), "pin")
	if err := os.WriteFile(pinFile, []byte("123456\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	newPinFile := filepath.Join(t.TempDir(), "newpin")
	if err := os.WriteFile(newPinFile, []byte("654321\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	k.ok(t, nil, "pin", "change", "--pin-file", pinFile, "--new-pin-file", newPinFile)
	k.ok(t, []string{"VKEY_PIN=654321", "VKEY_NEW_PIN=123456"}, "pin", "change")
	if out := k.ok(t, nil, "pin", "retries"); out != "8 PIN attempts left\n" {
		t.Errorf("pin retries: %q", out)
	}

	// creds list: the two passkeys, not the non-discoverable credential.
	norm.id(b64url(alice))
	norm.id(b64url(bob))
	out, list := credsList(t, k, pin1)
	golden(t, "creds-list", out, norm)
	if len(list.Credentials) != 2 || list.Existing != 2 {
		t.Fatalf("creds list: %+v", list)
	}
	out, _ = credsList(t, k, pin1, "--rp", "other.org")
	golden(t, "creds-list-rp", out, norm)
	if out := k.ok(t, pin1, "creds", "list"); !strings.Contains(out, "RP ") || !strings.Contains(out, "2 passkeys, room for") || !strings.Contains(out, b64url(bob)) {
		t.Errorf("creds list table:\n%s", out)
	}
	k.ok(t, pin1, "creds", "update", b64url(alice), "--name", "alice2", "--display-name", "Alice Two")
	// fido2-token prints standard base64: accepted too.
	k.ok(t, pin1, "creds", "update", base64.StdEncoding.EncodeToString(alice), "--display-name", "Alice 2")
	out, _ = credsList(t, k, pin1, "--rp", "example.com")
	golden(t, "creds-list-updated", out, norm)

	// Large blobs.
	blobFile := filepath.Join(t.TempDir(), "blob")
	blob := []byte(strings.Repeat("0123456789abcdef", 100))
	if err := os.WriteFile(blobFile, blob, 0o600); err != nil {
		t.Fatal(err)
	}
	k.ok(t, pin1, "largeblob", "set", b64url(alice), blobFile)
	if got := k.ok(t, pin1, "largeblob", "get", b64url(alice)); got != string(blob) {
		t.Errorf("largeblob get printed %d bytes, want the %d stored", len(got), len(blob))
	}
	k.ok(t, pin1, "largeblob", "set", b64url(alice), "-") // from stdin: empty replaces
	golden(t, "largeblob-get", k.ok(t, pin1, "largeblob", "get", "--json", b64url(alice)), norm)
	k.ok(t, pin1, "largeblob", "delete", b64url(alice))
	k.fails(t, pin1, 1, "has no large blob", "largeblob", "get", b64url(alice))
	k.fails(t, pin1, 1, "has no largeBlobKey", "largeblob", "set", b64url(bob), blobFile)

	// Delete.
	k.ok(t, pin1, "creds", "delete", b64url(bob))
	k.fails(t, pin1, 1, "no passkey with ID", "creds", "delete", b64url(bob))
	if _, list = credsList(t, k, pin1); len(list.Credentials) != 1 || list.Credentials[0].RPID != "example.com" {
		t.Errorf("after delete: %+v", list)
	}

	// Config.
	k.ok(t, pin1, "config", "always-uv", "on")
	if v := decodeInfo(t, k.ok(t, nil, "info", "--json")); !v.Options["alwaysUv"] {
		t.Errorf("always-uv on: options %v", v.Options)
	}
	if out := k.ok(t, pin1, "config", "always-uv", "on"); !strings.Contains(out, "already on") {
		t.Errorf("always-uv on twice: %q", out)
	}
	k.ok(t, pin1, "config", "always-uv", "off")
	k.ok(t, pin1, "config", "enterprise-attestation", "on")
	k.ok(t, pin1, "config", "min-pin-length", "8", "--rp", "example.com", "--rp", "example.org")
	v := decodeInfo(t, k.ok(t, nil, "info", "--json"))
	if v.MinPINLength != 8 || !v.ForcePINChange || !v.Options["ep"] || v.Options["alwaysUv"] {
		t.Errorf("after config: minPINLength %d forcePINChange %v options %v", v.MinPINLength, v.ForcePINChange, v.Options)
	}
	k.fails(t, pin1, 1, "PIN_POLICY_VIOLATION", "config", "min-pin-length", "6")
	k.ok(t, []string{"VKEY_PIN=123456", "VKEY_NEW_PIN=12345678"}, "pin", "change")
	pin2 := []string{"VKEY_PIN=12345678"}

	// Three wrong PINs in a row block the PIN until a power cycle.
	k.fails(t, []string{"VKEY_PIN=00000000"}, exitPINInvalid, "wrong PIN", "creds", "list")
	k.fails(t, []string{"VKEY_PIN=00000000"}, exitPINInvalid, "wrong PIN", "creds", "list")
	k.fails(t, []string{"VKEY_PIN=00000000"}, exitPINBlocked, "PIN_AUTH_BLOCKED", "creds", "list")
	k.fails(t, pin2, exitPINBlocked, "PIN_AUTH_BLOCKED", "creds", "list")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := k.api().PowerCycle(ctx); err != nil {
		t.Fatal(err)
	}
	credsList(t, k, pin2)

	// Reset (the CLI power cycles the vkey to open the 10-second window).
	k.fails(t, nil, exitUsage, "without confirmation", "reset")
	k.ok(t, nil, "reset", "--yes")
	if v := decodeInfo(t, k.ok(t, nil, "info", "--json")); v.Options["clientPin"] || v.MinPINLength != 4 || v.Options["ep"] {
		t.Errorf("after reset: %+v", v)
	}

	// Usage errors and missing devices.
	k.fails(t, nil, exitUsage, "accepts 1 arg", "creds", "delete")
	k.fails(t, nil, exitUsage, "not a credential ID", "creds", "delete", "!!")
	k.fails(t, nil, exitUsage, "want on or off", "config", "always-uv", "maybe")
	k.fails(t, nil, exitUsage, "unknown flag", "info", "--pin", "1234")
	k.fails(t, nil, exitNoDevice, `no vkey named "nosuchkey" is running`, "info", "--device", "nosuchkey")
	k.fails(t, nil, exitNoDevice, "no device", "info", "--device", "/nonexistent/hidraw")
}

// TestCLICompletionAndMan: shell completion and man pages are generated.
func TestCLICompletionAndMan(t *testing.T) {
	k := &mkey{&keyproc.Key{Runtime: t.TempDir()}}
	for _, sh := range []string{"bash", "zsh", "fish"} {
		if out := k.ok(t, nil, "completion", sh); !strings.Contains(out, "vkey") || len(out) < 500 {
			t.Errorf("completion %s: %d bytes", sh, len(out))
		}
	}
	dir := t.TempDir()
	k.ok(t, nil, "man", "--dir", dir)
	for _, page := range []string{"vkey.1", "vkey-run.1", "vkey-creds-list.1", "vkey-touch.1", "vkey-backup-export.1"} {
		b, err := os.ReadFile(filepath.Join(dir, page))
		if err != nil || !bytes.Contains(b, []byte(".TH \"VKEY\"")) {
			t.Errorf("%s: %v %q", page, err, b[:min(len(b), 80)])
		}
	}
	k.fails(t, nil, exitNoDevice, "no vkey is running", "touch")
}

// waitPending polls the control API until a presence request waits.
// registerInBackground starts a makeCredential for rpID that waits for a
// touch; its outcome arrives on the channel (within timeout).
func registerInBackground(c *client.Client, rpID string, timeout time.Duration) <-chan error {
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		_, err := c.MakeCredential(ctx, &ctap2.MakeCredentialRequest{
			ClientDataHash: make([]byte, 32), RP: &ctap2.RPEntity{ID: rpID},
			User: &ctap2.UserEntity{ID: []byte("u"), Name: "u"}, PubKeyCredParams: esParam(-7)})
		done <- err
	}()
	return done
}

func waitPending(t *testing.T, k *mkey) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		var st control.PresenceState
		if err := k.api().Do(ctx, http.MethodGet, "/presence", nil, &st); err == nil && st.Pending != nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no presence request became pending")
}

// TestCLIHarnessTouch is a CI harness: automatic presence off, a
// registration waits, `vkey touch` completes it; `vkey touch --deny` makes
// the next fail with CTAP2_ERR_OPERATION_DENIED (CTAP 2.1 section 6.1.2
// step 14); a command nobody touches for runs out of time (exit 6).
func TestCLIHarnessTouch(t *testing.T) {
	k := startManagedKey(t, "harness", "--ephemeral", "--transport", "udp", "--udp-addr", "127.0.0.1:0", "--presence", "touch")
	c, closeC := k.ctapClient(t)
	defer closeC()
	k.fails(t, nil, 1, `the key "harness" has no pending request`, "touch")

	for _, tc := range []struct {
		args []string
		want error
		say  string
	}{
		{[]string{"touch"}, nil, "vkey: approved makeCredential for example.com\n"},
		{[]string{"touch", "--deny", "--name", "harness"}, ctap2.ErrOperationDenied, "vkey: denied makeCredential for example.com\n"},
	} {
		done := registerInBackground(c, "example.com", 30*time.Second)
		waitPending(t, k)
		select {
		case err := <-done:
			t.Fatalf("the registration finished before the touch: %v", err)
		default:
		}
		if out := k.ok(t, nil, tc.args...); out != tc.say {
			t.Errorf("vkey %s printed %q, want %q", strings.Join(tc.args, " "), out, tc.say)
		}
		if err := <-done; !errors.Is(err, tc.want) && !(tc.want == nil && err == nil) {
			t.Errorf("after vkey %s: registration error %v, want %v", strings.Join(tc.args, " "), err, tc.want)
		}
	}
	closeC()
	// Nobody touches: the reset runs out of --timeout.
	k.fails(t, nil, exitTimeout, "touch it (a vkey: `vkey touch`)", "reset", "--yes", "--timeout", "1s")
}

// pemPublicKey writes the PEM public key of a PKCS#8 P-256 key.
func pemPublicKey(t *testing.T, priv *ecdsa.PrivateKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "pub.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestControlAPICredentialUsable: a credential added through the control
// API is usable by fido2-assert and verified by go-webauthn; a sign count
// set is the one the next assertion exceeds; a removed one is gone.
func TestControlAPICredentialUsable(t *testing.T) {
	needTool(t, "fido2-assert")
	k := startManagedKey(t, "ctl", "--ephemeral", "--transport", "pty", "--presence", "auto")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	id := make([]byte, 32)
	_, _ = rand.Read(id)
	var added control.Credential
	if err := k.api().Do(ctx, http.MethodPost, "/credentials", map[string]any{
		"credentialId": b64url(id), "rpId": "example.com", "privateKey": b64url(der), "signCount": 10,
		"userHandle": b64url([]byte("alice")), "backupEligibility": true,
	}, &added); err != nil {
		t.Fatal(err)
	}

	// libfido2 asserts with it and verifies the signature with the key we made.
	pub := pemPublicKey(t, priv)
	out := fido2Assert(t, k.Where, "example.com", base64.StdEncoding.EncodeToString(id), pub, "es256")
	if n := authDataCounter(t, out[2]); n <= 10 {
		t.Errorf("fido2-assert counter %d, want > 10", n)
	}

	// go-webauthn verifies an assertion, with the counter set by the API.
	rp, err := webauthntest.New("example.com")
	if err != nil {
		t.Fatal(err)
	}
	u := &webauthntest.User{ID: []byte("alice"), Name: "alice"}
	cose, err := base64.RawURLEncoding.DecodeString(added.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	u.Credentials = []webauthn.Credential{{ID: id, PublicKey: cose, AttestationType: "none",
		Flags:         webauthn.CredentialFlags{UserPresent: true, BackupEligible: true},
		Authenticator: webauthn.Authenticator{SignCount: 11}}}
	var patched control.Credential
	if err := k.api().Do(ctx, http.MethodPatch, "/credentials/"+b64url(id), map[string]any{"signCount": 5000}, &patched); err != nil || patched.SignCount != 5000 {
		t.Fatalf("PATCH signCount: %+v %v", patched, err)
	}
	assert := func() (*ctap2.GetAssertionResponse, error) {
		c, closeC := k.ctapClient(t)
		defer closeC()
		lc, err := rp.BeginLogin(u)
		if err != nil {
			t.Fatal(err)
		}
		var allow []ctap2.CredentialDescriptor
		for _, a := range lc.AllowList {
			allow = append(allow, ctap2.CredentialDescriptor{Type: "public-key", ID: a})
		}
		resp, err := c.GetAssertion(ctx, &ctap2.GetAssertionRequest{RPID: "example.com", ClientDataHash: lc.ClientDataHash, AllowList: allow})
		if err != nil {
			return nil, err
		}
		got, err := rp.FinishLogin(u, nil, lc, resp.Credential.ID, resp.AuthData, resp.Signature, nil)
		if err != nil {
			t.Fatalf("go-webauthn rejected the assertion of the added credential: %v", err)
		}
		if got.Authenticator.SignCount <= 5000 || got.Authenticator.CloneWarning {
			t.Errorf("counter %d (clone warning %v), want > 5000", got.Authenticator.SignCount, got.Authenticator.CloneWarning)
		}
		return resp, nil
	}
	if _, err := assert(); err != nil {
		t.Fatal(err)
	}

	// Removed: gone for libfido2 and for the platform client.
	if err := k.api().Do(ctx, http.MethodDelete, "/credentials/"+b64url(id), nil, nil); err != nil {
		t.Fatal(err)
	}
	in := fmt.Sprintf("%s\nexample.com\n%s\n", randomB64(32), base64.StdEncoding.EncodeToString(id))
	if out, err := tool(t, in, "fido2-assert", "-G", k.Where); err == nil || !strings.Contains(err.Error(), "FIDO_ERR_NO_CREDENTIALS") {
		t.Errorf("fido2-assert with a removed credential: %v\n%s", err, out)
	}
	if _, err := assert(); !errors.Is(err, ctap2.ErrNoCredentials) {
		t.Errorf("assertion with a removed credential: %v, want CTAP2_ERR_NO_CREDENTIALS", err)
	}
}

// TestCLICredsAgreeWithFido2Token: `vkey creds list` shows what
// `fido2-token -L -r` / `-L -k` show on the same key, and a large blob set
// by vkey is read by fido2-token.
func TestCLICredsAgreeWithFido2Token(t *testing.T) {
	clientsummary.Record(t, "libfido2 fido2-token -L, UDP", "vkey creds list agrees with libfido2's credential management")
	needTool(t, "fido2-token", "fido2-cred")
	k := startManagedKey(t, "agree", "--ephemeral", "--transport", "pty", "--presence", "auto")
	dev := k.Where
	if _, err := tool(t, "1234\n1234\n", "fido2-token", "-S", dev); err != nil {
		t.Fatal(err)
	}
	made := map[string]string{} // credential ID (base64) -> user ID (base64)
	for i, rp := range []string{"example.com", "example.com", "other.org"} {
		uid := b64([]byte(fmt.Sprintf("user-%d", i)))
		in := filepath.Join(t.TempDir(), "in")
		_ = os.WriteFile(in, []byte(fmt.Sprintf("%s\n%s\nuser%d\n%s\n", randomB64(32), rp, i, uid)), 0o600)
		out, err := tool(t, strings.Repeat("1234\n", 4), "fido2-cred", "-M", "-r", "-b", "-i", in, dev, "es256")
		if err != nil {
			t.Fatal(err)
		}
		made[lines(out)[4]] = uid
	}
	pin := []string{"VKEY_PIN=1234"}
	_, list := credsList(t, k, pin)

	rpsOut, err := tool(t, "1234\n", "fido2-token", "-L", "-r", dev)
	if err != nil {
		t.Fatal(err)
	}
	var theirRPs, ourRPs []string
	for _, l := range lines(rpsOut) {
		f := strings.Fields(l) // "00: <rpIdHash> <rpId>"
		if len(f) == 3 {
			theirRPs = append(theirRPs, f[2])
		}
	}
	seen := map[string]bool{}
	for _, c := range list.Credentials {
		if !seen[c.RPID] {
			seen[c.RPID] = true
			ourRPs = append(ourRPs, c.RPID)
		}
	}
	sort.Strings(theirRPs)
	sort.Strings(ourRPs)
	if strings.Join(theirRPs, ",") != strings.Join(ourRPs, ",") || len(ourRPs) != 2 {
		t.Errorf("relying parties: fido2-token %v, vkey %v", theirRPs, ourRPs)
	}
	for _, rp := range ourRPs {
		out, err := tool(t, "1234\n", "fido2-token", "-L", "-k", rp, dev)
		if err != nil {
			t.Fatal(err)
		}
		theirs := map[string]string{} // "00: <credId> <displayName> <userId> <type> <prot>"
		for _, l := range lines(out) {
			if f := strings.Fields(l); len(f) >= 4 {
				theirs[f[1]] = f[3]
			}
		}
		ours := map[string]string{}
		for _, c := range list.Credentials {
			if c.RPID == rp {
				id, _ := parseID(c.CredentialID)
				uid, _ := parseID(c.UserID)
				ours[base64.StdEncoding.EncodeToString(id)] = base64.StdEncoding.EncodeToString(uid)
			}
		}
		t.Logf("%s: fido2-token -L -k lists %d credentials, vkey %d", rp, len(theirs), len(ours))
		if fmt.Sprint(theirs) != fmt.Sprint(ours) {
			t.Errorf("%s: fido2-token -L -k lists %v, vkey creds list %v", rp, theirs, ours)
		}
		for id, uid := range ours {
			if made[id] != uid {
				t.Errorf("%s: credential %s has user %s, fido2-cred made it with %s", rp, id, uid, made[id])
			}
		}
	}

	// A large blob written by vkey is read by libfido2.
	var target string
	for _, c := range list.Credentials {
		if c.RPID == "other.org" {
			target = c.CredentialID
		}
	}
	blob := filepath.Join(t.TempDir(), "blob")
	_ = os.WriteFile(blob, []byte("written by vkey largeblob set"), 0o600)
	k.ok(t, pin, "largeblob", "set", target, blob)
	got := filepath.Join(t.TempDir(), "got")
	if _, err := tool(t, "1234\n", "fido2-token", "-G", "-b", "-n", "other.org", got, dev); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(got); string(b) != "written by vkey largeblob set" {
		t.Errorf("fido2-token read the large blob as %q", b)
	}
}

// TestCLIBackupReport: the --json report of backup import and export, and
// the clear refusals (a running key holds its state; a wrong passphrase).
func TestCLIBackupReport(t *testing.T) {
	root := t.TempDir()
	stateA, stateB := filepath.Join(root, "a"), filepath.Join(root, "b")
	passA := filepath.Join(root, "pass")
	if err := os.WriteFile(passA, []byte("state passphrase\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := startManagedKey(t, "a", "--state", stateA, "--passphrase-file", passA, "--passkeys", "syncable",
		"--transport", "udp", "--udp-addr", "127.0.0.1:0", "--presence", "auto")
	c, closeC := a.ctapClient(t)
	register(t, c, "example.com", "alice", -7, true, false)
	register(t, c, "example.org", "bob", -8, false, false)
	closeC()
	bp := []string{"VKEY_BACKUP_PASSPHRASE=backup passphrase"}
	file := filepath.Join(root, "passkeys.backup")
	a.fails(t, bp, 1, "in use by process", "backup", "export", "--state", stateA, "--passphrase-file", passA, "--out", file)
	a.Stop()
	norm := newNormaliser(a)
	golden(t, "backup-export", a.ok(t, bp, "backup", "export", "--state", stateA, "--passphrase-file", passA, "--out", file, "--json"), norm)
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v", fi, err)
	}

	b := startManagedKey(t, "b", "--state", stateB, "--transport", "udp", "--udp-addr", "127.0.0.1:0", "--presence", "auto")
	b.Stop()
	b.fails(t, []string{"VKEY_BACKUP_PASSPHRASE=wrong"}, 1, "wrong passphrase", "backup", "import", "--state", stateB, file)
	golden(t, "backup-import", b.ok(t, bp, "backup", "import", "--state", stateB, file, "--json"), norm)
	if out := b.ok(t, bp, "backup", "import", "--state", stateB, file); !strings.Contains(out, "0 added, 2 skipped, 0 refused") {
		t.Errorf("second import:\n%s", out)
	}
	b.fails(t, bp, 1, "no vkey state", "backup", "import", "--state", filepath.Join(root, "none"), file)
}

// TestCLIAttestationRoot: `vkey attestation` prints the root that the
// packed attestation of a registration (verified by go-webauthn) chains
// to, and --out writes the same certificate to a file.
func TestCLIAttestationRoot(t *testing.T) {
	k := startManagedKey(t, "attest", "--ephemeral", "--transport", "udp", "--udp-addr", "127.0.0.1:0", "--presence", "auto", "--attestation", "packed")
	out := k.ok(t, nil, "attestation")
	block, rest := pem.Decode([]byte(out))
	if block == nil || block.Type != "CERTIFICATE" || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("vkey attestation printed %q, want one PEM certificate", out)
	}
	root, err := x509.ParseCertificate(block.Bytes)
	if err != nil || !root.IsCA {
		t.Fatalf("root certificate: %v (CA %v)", err, root != nil && root.IsCA)
	}

	c, closeC := k.ctapClient(t)
	defer closeC()
	rp, _ := webauthntest.New("example.com")
	u := webauthntest.NewUser("alice")
	cer, err := rp.BeginRegistration(u)
	if err != nil {
		t.Fatal(err)
	}
	att, err := c.MakeCredential(context.Background(), &ctap2.MakeCredentialRequest{ClientDataHash: cer.ClientDataHash,
		RP: &ctap2.RPEntity{ID: "example.com"}, User: &ctap2.UserEntity{ID: u.ID, Name: u.Name}, PubKeyCredParams: esParam(-7)})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := att.CredentialID()
	if _, err := rp.FinishRegistration(u, cer, id, att.Format, att.AuthData, att.AttStmt); err != nil {
		t.Fatalf("go-webauthn rejected the packed attestation: %v", err)
	}
	var stmt struct {
		X5C [][]byte `cbor:"x5c"`
	}
	if err := ctap2.Unmarshal(att.AttStmt, &stmt); err != nil || len(stmt.X5C) == 0 {
		t.Fatalf("no x5c in the packed statement: %v", err)
	}
	leaf, err := x509.ParseCertificate(stmt.X5C[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.CheckSignatureFrom(root); err != nil {
		t.Errorf("the attestation certificate does not chain to the root vkey attestation printed: %v", err)
	}
	closeC()

	file := filepath.Join(t.TempDir(), "root.pem")
	k.ok(t, nil, "attestation", "--name", "attest", "--out", file)
	if b, err := os.ReadFile(file); err != nil || string(b) != out {
		t.Errorf("--out wrote %q (%v), want what standard output had", b, err)
	}
	k.fails(t, nil, exitNoDevice, "vkey run --name nosuch", "attestation", "--name", "nosuch")

	// Issue 13: the MDS3 statement loads in go-webauthn's metadata package
	// and a relying party checking against it accepts the key.
	mrp, err := webauthntest.NewWithMetadata("example.com", []byte(k.ok(t, nil, "attestation", "--metadata")))
	if err != nil {
		t.Fatalf("vkey attestation --metadata: %v", err)
	}
	c, closeC = k.ctapClient(t)
	defer closeC()
	cer, err = mrp.BeginRegistration(u)
	if err != nil {
		t.Fatal(err)
	}
	att, err = c.MakeCredential(context.Background(), &ctap2.MakeCredentialRequest{ClientDataHash: cer.ClientDataHash,
		RP: &ctap2.RPEntity{ID: "example.com"}, User: &ctap2.UserEntity{ID: u.ID, Name: u.Name}, PubKeyCredParams: esParam(-35)})
	if err != nil {
		t.Fatal(err)
	}
	id, _ = att.CredentialID()
	if _, err := mrp.FinishRegistration(u, cer, id, att.Format, att.AuthData, att.AttStmt); err != nil {
		t.Errorf("a relying party checking the MDS statement rejected the key: %v", err)
	}
}
