package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vkey-dev/vkey/internal/clientsummary"
	"github.com/vkey-dev/vkey/internal/keyproc"
)

// The end-to-end tests run the real vkey binary as a child process and drive
// it with clients nobody on this project wrote: libfido2's fido2-token,
// fido2-cred and fido2-assert, OpenSSH's ssh-keygen, and python3-fido2.

// e2eKey is a running `vkey run` (the harness of internal/keyproc).
type e2eKey = keyproc.Key

// startKey runs `vkey run` with args (default name, isolated runtime
// folder and state) and waits until it is ready.
func startKey(t testing.TB, args ...string) *e2eKey {
	return keyproc.Start(t, keyproc.Options{}, args...)
}

// needTool skips the test when an independent client is not installed
// (make deps installs them).
func needTool(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Skipf("%s is not installed (make deps installs it): %v", n, err)
		}
	}
}

// tool runs an external client with input on stdin. libfido2's tools read
// a PIN from /dev/tty when there is one, so the client runs in a new
// session without a controlling terminal, where its PIN prompt falls back
// to stdin. It runs as the child of a shell that leads that session: a
// session leader opening the key's pty would make it its controlling
// terminal, and its PIN prompt would then talk to the key.
func tool(t testing.TB, input string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", append([]string{"-c", `"$0" "$@"; exit $?`, name}, args...)...)
	cmd.Stdin = strings.NewReader(input)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func randomB64(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b64(b)
}

func lines(s string) []string { return strings.Split(strings.TrimRight(s, "\n"), "\n") }

// fido2Register makes a credential with fido2-cred -M and verifies it with
// fido2-cred -V; it returns the credential ID and the PEM public key file.
func fido2Register(t *testing.T, dev, rp, alg string, extra ...string) (credID, pubkey string) {
	t.Helper()
	in := fmt.Sprintf("%s\n%s\nalice\n%s\n", randomB64(32), rp, randomB64(16))
	made, err := tool(t, in, "fido2-cred", append(append([]string{"-M"}, extra...), dev, alg)...)
	if err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(t.TempDir(), "pub.pem")
	verifyFlags := []string{"-V"}
	for _, f := range extra {
		if f == "-h" {
			verifyFlags = append(verifyFlags, "-h")
		}
	}
	out, err := tool(t, made, "fido2-cred", append(verifyFlags, alg)...)
	if err != nil {
		t.Fatalf("fido2-cred -V rejected our attestation: %v\ninput:\n%s", err, made)
	}
	l := lines(out)
	if len(l) < 2 {
		t.Fatalf("fido2-cred -V printed %q", out)
	}
	if err := os.WriteFile(pub, []byte(strings.Join(l[1:], "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return l[0], pub
}

// fido2Assert gets an assertion with fido2-assert -G and verifies it with
// fido2-assert -V against the public key.
func fido2Assert(t *testing.T, dev, rp, credID, pubkey, alg string, extra ...string) []string {
	t.Helper()
	in := fmt.Sprintf("%s\n%s\n", randomB64(32), rp)
	if credID != "" {
		in += credID + "\n"
	}
	got, err := tool(t, in, "fido2-assert", append(append([]string{"-G"}, extra...), dev)...)
	if err != nil {
		t.Fatal(err)
	}
	l := lines(got)
	if len(l) < 4 {
		t.Fatalf("fido2-assert -G printed %q", got)
	}
	verify := strings.Join(l[:4], "\n") + "\n"
	if _, err := tool(t, verify, "fido2-assert", "-V", "-p", pubkey, alg); err != nil {
		t.Fatalf("fido2-assert -V rejected our assertion: %v", err)
	}
	return l
}

// TestE2EFido2ToolsOverPTY: libfido2's own tools register and authenticate
// against `vkey run --transport pty`.
func TestE2EFido2ToolsOverPTY(t *testing.T) {
	clientsummary.Record(t, "libfido2 tools (fido2-token, fido2-cred, fido2-assert), pty",
		"info; make + verify and assert + verify for es256, eddsa, es384, rs256, discoverable or not; hmac-secret")
	needTool(t, "fido2-token", "fido2-cred", "fido2-assert")
	k := startKey(t, "--ephemeral", "--transport", "pty", "--presence", "auto")
	info, err := tool(t, "", "fido2-token", "-I", k.Where)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"FIDO_2_1", "es256", "eddsa", "es384", "rs256", "credMgmt", "aaguid: 766b65792d7669727475616c2d6b6579"} {
		if !strings.Contains(info, want) {
			t.Errorf("fido2-token -I lacks %q:\n%s", want, info)
		}
	}
	for _, alg := range []string{"es256", "eddsa", "es384", "rs256"} { // what fido2-cred 1.12 knows
		t.Run(alg, func(t *testing.T) {
			id, pub := fido2Register(t, k.Where, "example.com", alg)
			fido2Assert(t, k.Where, "example.com", id, pub, alg)
			_, rpub := fido2Register(t, k.Where, "resident.example", alg, "-r")
			out := fido2Assert(t, k.Where, "resident.example", "", rpub, alg, "-r")
			if len(out) < 5 {
				t.Errorf("a discoverable assertion carries the user id: %q", out)
			}
		})
	}
	t.Run("hmac-secret", func(t *testing.T) {
		id, pub := fido2Register(t, k.Where, "hmac.example", "es256", "-h")
		in := fmt.Sprintf("%s\nhmac.example\n%s\n%s\n", randomB64(32), id, randomB64(32))
		got, err := tool(t, in, "fido2-assert", "-G", "-h", k.Where)
		if err != nil {
			t.Fatal(err)
		}
		l := lines(got)
		if len(l) < 5 {
			t.Fatalf("no hmac-secret output: %q", got)
		}
		if _, err := tool(t, strings.Join(l[:4], "\n")+"\n", "fido2-assert", "-V", "-h", "-p", pub, "es256"); err != nil {
			t.Fatal(err)
		}
	})
}

// TestE2ESSHKeygen: OpenSSH makes security-key keys on the virtual key.
func TestE2ESSHKeygen(t *testing.T) {
	clientsummary.Record(t, "OpenSSH ssh-keygen, pty", "ecdsa-sk and ed25519-sk keys made")
	needTool(t, "ssh-keygen")
	k := startKey(t, "--ephemeral", "--transport", "pty", "--presence", "auto")
	for _, typ := range []string{"ecdsa-sk", "ed25519-sk"} {
		t.Run(typ, func(t *testing.T) {
			key := filepath.Join(t.TempDir(), "id")
			if _, err := tool(t, "", "ssh-keygen", "-q", "-t", typ, "-O", "device="+k.Where, "-N", "", "-f", key); err != nil {
				t.Fatal(err)
			}
			pub, err := os.ReadFile(key + ".pub")
			if err != nil || !strings.HasPrefix(string(pub), "sk-") {
				t.Fatalf("public key %q: %v", pub, err)
			}
			// Signing (ssh-keygen -Y sign, ssh) finds the key by enumerating
			// USB hidraw devices, which a pty is not: the VM test covers it.
			wantPrefix := map[string]string{"ecdsa-sk": "sk-ecdsa-sha2-nistp256@openssh.com ", "ed25519-sk": "sk-ssh-ed25519@openssh.com "}[typ]
			if !strings.HasPrefix(string(pub), wantPrefix) {
				t.Errorf("public key %q, want %s...", pub, wantPrefix)
			}
		})
	}
}

// TestE2EPythonFido2OverUDP: Debian's python3-fido2 registers and
// authenticates through Fido2Client, checked by its Fido2Server; then it
// exercises the CTAP 2.1 features (ClientPin with both protocols,
// CredentialManagement, LargeBlobs, Config, extensions) and U2F (Ctap1),
// which refuses what CTAP2 protects (issue 11, point 3).
func TestE2EPythonFido2OverUDP(t *testing.T) {
	for _, script := range []string{"webauthn_udp.py", "ctap21_udp.py", "u2f_hardening_udp.py"} {
		t.Run(script, func(t *testing.T) { pythonScript(t, script) })
	}
	// PIN-protected flows as platforms run them (issue 16), Firefox's
	// sign-in replayed at the CTAP level among them.
	t.Run("pinflows_udp.py", func(t *testing.T) { pythonScript(t, "pinflows_udp.py", "--ep-rp-id", "corp.example") })
}

// pythonScript runs testdata/python/NAME against a fresh UDP key started
// with the extra `vkey run` arguments.
func pythonScript(t *testing.T, name string, args ...string) {
	clientsummary.Record(t, "python3-fido2, UDP", "testdata/python/"+name)
	needTool(t, "/usr/bin/python3")
	if err := exec.Command("/usr/bin/python3", "-c", "import fido2").Run(); err != nil {
		t.Skip("python3-fido2 is not installed (make deps installs it)")
	}
	runPython(t, udpKey(t, args...), name, nil)
}

// udpKey starts a key on an ephemeral loopback UDP port that approves
// every request, with the extra `vkey run` arguments.
func udpKey(t *testing.T, args ...string) *e2eKey {
	return startKey(t, append([]string{"--ephemeral", "--transport", "udp", "--udp-addr", "127.0.0.1:0", "--presence", "auto"}, args...)...)
}

// runPython runs testdata/python/NAME with /usr/bin/python3 against k
// (VKEY_UDP), the folder of testdata/python first on its path, then the
// env entries (which may put another PYTHONPATH first), and logs its
// output.
func runPython(t *testing.T, k *e2eKey, name string, env []string) {
	t.Helper()
	script, _ := filepath.Abs("../testdata/python/" + name)
	path := filepath.Dir(script)
	cmd := exec.Command("/usr/bin/python3", script)
	cmd.Env = append(os.Environ(), "VKEY_UDP="+strings.TrimPrefix(k.Where, "udp:"))
	for _, e := range env {
		if p, ok := strings.CutPrefix(e, "PYTHONPATH="); ok {
			path = p + string(os.PathListSeparator) + path
			continue
		}
		cmd.Env = append(cmd.Env, e)
	}
	cmd.Env = append(cmd.Env, "PYTHONPATH="+path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s failed: %v\n%s", name, err, out)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		t.Log(sc.Text())
	}
}
