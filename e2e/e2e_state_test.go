package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"github.com/vkey-dev/vkey/keystore"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/ctap2/client"
	"github.com/vkey-dev/vkey/hid"
	"github.com/vkey-dev/vkey/internal/keyproc"
	"github.com/vkey-dev/vkey/internal/webauthntest"
)

// These tests cover issue 5 end to end: state that survives restarts and
// SIGKILL, stays encrypted, is locked, refuses tampering, and moves
// syncable passkeys between keys.

// dial connects a CTAP2 client to a running key.
func dial(t testing.TB, where string) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := hid.Dial(ctx, where)
	if err != nil {
		t.Fatalf("dial %s: %v", where, err)
	}
	t.Cleanup(func() { c.Close() })
	return client.New(c)
}

// authDataCounter reads the signature counter of authenticator data as
// fido2-assert prints it (base64 of a CBOR byte string).
func authDataCounter(t testing.TB, b64AuthData string) uint32 {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(b64AuthData)
	if err != nil {
		t.Fatal(err)
	}
	var ad []byte
	if err := ctap2.Unmarshal(raw, &ad); err != nil {
		ad = raw
	}
	if len(ad) < 37 {
		t.Fatalf("authenticator data too short: %x", ad)
	}
	return binary.BigEndian.Uint32(ad[33:37])
}

func stopKey(t testing.TB, k *e2eKey) {
	t.Helper()
	k.Stop()
}

// TestE2ERestartKeepsCredentials: register with fido2-cred, restart vkey on
// the same state, authenticate with fido2-assert, counter increased.
func TestE2ERestartKeepsCredentials(t *testing.T) {
	needTool(t, "fido2-cred", "fido2-assert")
	state := filepath.Join(t.TempDir(), "state")
	k := startKey(t, "--state", state, "--transport", "pty", "--presence", "auto")
	id, pub := fido2Register(t, k.Where, "example.com", "es256", "-r")
	first := authDataCounter(t, fido2Assert(t, k.Where, "example.com", id, pub, "es256")[2])
	stopKey(t, k)
	k = startKey(t, "--state", state, "--transport", "pty", "--presence", "auto")
	out := fido2Assert(t, k.Where, "example.com", "", pub, "es256", "-r")
	if second := authDataCounter(t, out[2]); second <= first {
		t.Fatalf("counter %d after restart, want > %d", second, first)
	}
	stopKey(t, k)
	checkStateFiles(t, state)
}

// checkStateFiles: a 0700 folder of 0600 files.
func checkStateFiles(t testing.TB, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		mode := info.Mode().Perm()
		if d.IsDir() && mode != 0o700 || !d.IsDir() && mode&0o077 != 0 {
			t.Errorf("%s has mode %o", path, mode)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestE2ESecretsNotInPlaintext: after setting a PIN and creating a
// credential, no file of the state folder holds the PIN, its hash, or the
// credential's private key.
func TestE2ESecretsNotInPlaintext(t *testing.T) {
	needTool(t, "fido2-token", "fido2-cred")
	state := filepath.Join(t.TempDir(), "state")
	k := startKey(t, "--state", state, "--transport", "pty", "--presence", "auto", "--passkeys", "syncable")
	if _, err := tool(t, "731946\n731946\n", "fido2-token", "-S", k.Where); err != nil {
		t.Fatal(err)
	}
	fido2Register(t, k.Where, "example.com", "es256")
	stopKey(t, k)
	h := sha256.Sum256([]byte("731946"))
	secrets := map[string][]byte{"PIN": []byte("731946"), "PIN hash": h[:16]}
	// The syncable credential's private key: export it and look for it.
	bin := keyproc.Binary(t)
	exported := filepath.Join(t.TempDir(), "backup")
	cmd := exec.Command(bin, "backup", "export", "--state", state, "--out", exported)
	cmd.Env = append(os.Environ(), "VKEY_BACKUP_PASSPHRASE=correct horse")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("backup export: %v\n%s", err, out)
	}
	checkStateFiles(t, state)
	filepath.WalkDir(state, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for name, s := range secrets {
			if bytes.Contains(b, s) {
				t.Errorf("%s holds the %s in plaintext", path, name)
			}
		}
		if bytes.Contains(b, []byte("PRIVATE KEY")) || bytes.Contains(b, []byte{0x30, 0x81, 0x87, 0x02, 0x01, 0x00}) {
			t.Errorf("%s holds a PKCS#8 private key in plaintext", path)
		}
		return nil
	})
}

// TestE2ELockAndTamper: a second vkey on the same state is refused with the
// PID of the first; a damaged state file stops vkey and is left untouched;
// a wrong passphrase is a clear error.
func TestE2ELockAndTamper(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	pass := filepath.Join(t.TempDir(), "pass")
	os.WriteFile(pass, []byte("first passphrase\n"), 0o600)
	k := startKey(t, "--state", state, "--transport", "udp", "--udp-addr", "127.0.0.1:0", "--presence", "auto", "--passphrase-file", pass)
	bin := keyproc.Binary(t)
	// The other runs have a runtime folder and a name of their own: a key
	// already running on the machine (or the first one here) must not
	// answer for them.
	runtime := t.TempDir()
	run := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, append([]string{"run", "--transport", "udp", "--udp-addr", "127.0.0.1:0", "--presence", "auto", "--name", "lock-tamper"}, args...)...)
		cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+runtime)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run("--state", state, "--passphrase-file", pass)
	if err == nil || !strings.Contains(out, fmt.Sprint(k.Cmd.Process.Pid)) {
		t.Errorf("second vkey on a locked state: err %v, output %q (want the first's PID %d)", err, out, k.Cmd.Process.Pid)
	}
	stopKey(t, k)

	wrong := filepath.Join(t.TempDir(), "wrong")
	os.WriteFile(wrong, []byte("not the passphrase\n"), 0o600)
	before := snapshot(t, state)
	out, err = run("--state", state, "--passphrase-file", wrong)
	if err == nil || !strings.Contains(strings.ToLower(out), "passphrase") {
		t.Errorf("wrong passphrase: err %v, output %q", err, out)
	}
	if !snapshotEqual(before, snapshot(t, state)) {
		t.Error("a wrong passphrase changed the state folder")
	}

	file := filepath.Join(state, keystore.StateFileName)
	b, err := os.ReadFile(file)
	if err != nil || len(b) < 2*4096 {
		t.Fatalf("state file: %v", err)
	}
	// Both bbolt meta pages (at 0 and 4096, after a 16-byte page header):
	// the store's root cannot be found.
	b[16+4] ^= 0x40
	b[4096+16+4] ^= 0x40
	os.WriteFile(file, b, 0o600)
	out, err = run("--state", state, "--passphrase-file", pass)
	if err == nil || !strings.Contains(out, "untouched") {
		t.Errorf("tampered state: err %v, output %q", err, out)
	}
	if after, _ := os.ReadFile(file); !bytes.Equal(after, b) {
		t.Error("the tampered state file was overwritten")
	}
}

func snapshot(t testing.TB, dir string) map[string]string {
	m := map[string]string{}
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() != "lock" {
			b, _ := os.ReadFile(path)
			m[path] = string(b)
		}
		return nil
	})
	return m
}

func snapshotEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestE2ECrashLoop kills `vkey run` with SIGKILL at random moments while a
// client registers and authenticates, hundreds of times. The credentials are
// syncable, so the store keeps each one (a device-bound non-discoverable
// credential lives only in its ID) without the discoverable limit: after every
// restart the state loads, every credential whose creation was answered is
// there, and every counter exceeds any counter seen before.
func TestE2ECrashLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("crash loop skipped in -short mode")
	}
	const kills = 300
	state := filepath.Join(t.TempDir(), "state")
	answered := map[string]bool{} // credential IDs whose creation was answered
	counters := map[string]uint32{}
	var ops, killed int
	var lastRun []string // credentials created in the run before the last kill
	rng := rand.New(rand.NewPCG(1, 2))
	deadline := time.Now().Add(4 * time.Minute)
	opCtx := func() (context.Context, context.CancelFunc) {
		// A killed key never answers: every operation is bounded.
		return context.WithTimeout(context.Background(), 2*time.Second)
	}
	// verify checks that credential id is present and its counter grew.
	verify := func(c *client.Client, id string) {
		ctx, cancel := opCtx()
		defer cancel()
		resp, err := c.GetAssertion(ctx, &ctap2.GetAssertionRequest{RPID: "crash.example", ClientDataHash: make([]byte, 32),
			AllowList: []ctap2.CredentialDescriptor{{Type: "public-key", ID: []byte(id)}}, Options: map[string]bool{"up": false}})
		if err != nil {
			t.Fatalf("after kill %d: credential %x lost: %v", killed, id[:8], err)
		}
		n := binary.BigEndian.Uint32(resp.AuthData[33:37])
		if n <= counters[id] {
			t.Fatalf("after kill %d: counter %d, but %d was seen before", killed, n, counters[id])
		}
		counters[id] = n
		ops++
	}
	for killed < kills && time.Now().Before(deadline) {
		k := startKey(t, "--state", state, "--transport", "udp", "--udp-addr", "127.0.0.1:0", "--presence", "auto", "--passkeys", "syncable")
		c := dial(t, k.Where)
		// After the restart: what the last run created is here, and a sample
		// of the older credentials (all of them every 50 kills); counters grow.
		toCheck := append([]string(nil), lastRun...)
		for id := range answered {
			if killed%50 == 0 || rng.IntN(len(answered)) < 5 {
				toCheck = append(toCheck, id)
			}
		}
		for _, id := range toCheck {
			verify(c, id)
		}
		lastRun = nil
		// Work, and kill at a random moment. The client's operations end
		// as soon as the process is gone.
		alive, dead := context.WithCancel(context.Background())
		exited := make(chan struct{})
		go func() { <-k.Exited(); dead(); close(exited) }()
		timer := time.AfterFunc(time.Duration(rng.IntN(30))*time.Millisecond, func() { _ = k.Cmd.Process.Kill() })
		var opErr error
		for i := 0; ; i++ {
			ctx, cancel := context.WithTimeout(alive, 5*time.Second)
			if i%4 == 0 || len(lastRun) == 0 {
				req := &ctap2.MakeCredentialRequest{ClientDataHash: make([]byte, 32), RP: &ctap2.RPEntity{ID: "crash.example"},
					User:             &ctap2.UserEntity{ID: []byte(fmt.Sprintf("u%d-%d", killed, i))},
					PubKeyCredParams: esParams(t)}
				att, err := c.MakeCredential(ctx, req)
				cancel()
				if err != nil {
					opErr = err
					break
				}
				id, _ := att.CredentialID()
				answered[string(id)] = true
				lastRun = append(lastRun, string(id))
				counters[string(id)] = binary.BigEndian.Uint32(att.AuthData[33:37])
			} else {
				id := lastRun[rng.IntN(len(lastRun))]
				resp, err := c.GetAssertion(ctx, &ctap2.GetAssertionRequest{RPID: "crash.example", ClientDataHash: make([]byte, 32),
					AllowList: []ctap2.CredentialDescriptor{{Type: "public-key", ID: []byte(id)}}})
				cancel()
				if err != nil {
					opErr = err
					break
				}
				n := binary.BigEndian.Uint32(resp.AuthData[33:37])
				if n <= counters[id] {
					t.Fatalf("counter %d did not increase past %d", n, counters[id])
				}
				counters[id] = n
			}
			ops++
		}
		if timer.Stop() {
			t.Fatalf("an operation failed before the kill: %v", opErr)
		}
		<-exited
		killed++
	}
	// Finally, every credential ever answered.
	k := startKey(t, "--state", state, "--transport", "udp", "--udp-addr", "127.0.0.1:0", "--presence", "auto")
	c := dial(t, k.Where)
	for id := range answered {
		verify(c, id)
	}
	if killed < 100 {
		t.Fatalf("only %d kills in the time bound", killed)
	}
	t.Logf("crash loop: %d SIGKILLs, %d answered operations, %d credentials, all present with growing counters", killed, ops, len(answered))
}

func esParams(testing.TB) []ctap2.CredentialParameter {
	return []ctap2.CredentialParameter{{Type: "public-key", Alg: -7}}
}

// TestE2EBackupMovesSyncablePasskeys: a syncable passkey registered on one
// key (BE=1, BS=0) is exported, imported into another key, and used there
// (BE=1, BS=1), as go-webauthn sees it; a device-bound one is refused.
func TestE2EBackupMovesSyncablePasskeys(t *testing.T) {
	stateA := filepath.Join(t.TempDir(), "a")
	stateB := filepath.Join(t.TempDir(), "b")
	rp, err := webauthntest.New("example.com")
	if err != nil {
		t.Fatal(err)
	}
	u := webauthntest.NewUser("alice")
	ctx := context.Background()

	a := startKey(t, "--state", stateA, "--transport", "udp", "--udp-addr", "127.0.0.1:0", "--presence", "auto", "--passkeys", "syncable")
	ca := dial(t, a.Where)
	cer, err := rp.BeginRegistration(u)
	if err != nil {
		t.Fatal(err)
	}
	req := &ctap2.MakeCredentialRequest{ClientDataHash: cer.ClientDataHash, RP: &ctap2.RPEntity{ID: "example.com"},
		User: &ctap2.UserEntity{ID: u.ID, Name: u.Name}, PubKeyCredParams: esParams(t), Options: map[string]bool{"rk": true}}
	att, err := ca.MakeCredential(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := att.CredentialID()
	cred, err := rp.FinishRegistration(u, cer, id, att.Format, att.AuthData, att.AttStmt)
	if err != nil {
		t.Fatal(err)
	}
	if !cred.Flags.BackupEligible || cred.Flags.BackupState {
		t.Errorf("syncable registration flags %+v, want BE=1 BS=0", cred.Flags)
	}
	stopKey(t, a)

	bin := keyproc.Binary(t)
	backup := filepath.Join(t.TempDir(), "passkeys.vkeybackup")
	vkey := func(args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "VKEY_BACKUP_PASSPHRASE=correct horse battery")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := vkey("backup", "export", "--state", stateA, "--out", backup); err != nil {
		t.Fatalf("export: %v\n%s", err, out)
	}
	// The other key exists (it has run once) before it imports.
	stopKey(t, startKey(t, "--state", stateB, "--transport", "udp", "--udp-addr", "127.0.0.1:0", "--presence", "auto"))
	if out, err := vkey("backup", "import", "--state", stateB, backup); err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	b := startKey(t, "--state", stateB, "--transport", "udp", "--udp-addr", "127.0.0.1:0", "--presence", "auto")
	cb := dial(t, b.Where)
	lc, err := rp.BeginLogin(nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := cb.GetAssertion(ctx, &ctap2.GetAssertionRequest{RPID: "example.com", ClientDataHash: lc.ClientDataHash})
	if err != nil {
		t.Fatalf("the imported passkey does not authenticate: %v", err)
	}
	got, err := rp.FinishLogin(nil, []*webauthntest.User{u}, lc, resp.Credential.ID, resp.AuthData, resp.Signature, resp.User.ID)
	if err != nil {
		t.Fatalf("go-webauthn rejected the imported passkey's assertion: %v", err)
	}
	if !got.Flags.BackupEligible || !got.Flags.BackupState {
		t.Errorf("flags after backup %+v, want BE=1 BS=1", got.Flags)
	}
	stopKey(t, b)

	// A device-bound passkey never leaves: export holds nothing of it.
	c := startKey(t, "--state", stateA, "--transport", "udp", "--udp-addr", "127.0.0.1:0", "--presence", "auto", "--passkeys", "device-bound")
	cc := dial(t, c.Where)
	req.User.ID = []byte("device-bound-user")
	att, err = cc.MakeCredential(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	dbID, _ := att.CredentialID()
	stopKey(t, c)
	out, err := vkey("backup", "export", "--state", stateA, "--out", backup+"2", "--id", base64.RawURLEncoding.EncodeToString(dbID))
	if err == nil || !strings.Contains(out, "device-bound") {
		t.Errorf("exporting a device-bound passkey by ID: err %v, output %q", err, out)
	}
	if _, statErr := os.Stat(backup + "2"); statErr == nil {
		t.Error("a refused export must not leave a backup file")
	}
}
