package control_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vkey-dev/vkey"
	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/ctap2/client"
	"github.com/vkey-dev/vkey/hid"
	"github.com/vkey-dev/vkey/internal/control"
	"github.com/vkey-dev/vkey/keystore"
	"github.com/vkey-dev/vkey/presence"
)

// fixture is an in-process key with its control API on a unix socket.
type fixture struct {
	a      *ctap2.Authenticator
	broker *presence.Broker
	hub    *control.Hub
	ctap   *client.Client // through the event-reporting handler
	api    *control.Client
	socket string
}

func newFixture(t *testing.T, mode presence.Mode, mutate ...func(*ctap2.Options)) *fixture {
	t.Helper()
	f := &fixture{hub: control.NewHub()}
	f.broker = presence.New(presence.Options{Mode: mode})
	opts := ctap2.Options{Store: keystore.NewMemory(0), Presence: f.broker, Attestation: ctap2.AttestationNone, Observer: f.hub}
	for _, m := range mutate {
		m(&opts)
	}
	a, err := ctap2.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	f.a = a
	f.ctap = client.New(handlerTransport{vkey.Handler(a)})
	dir, err := os.MkdirTemp("", "vkctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	f.socket = filepath.Join(dir, "run", "k.sock")
	ln, err := control.ListenUnix(f.socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := control.New(control.Config{Name: "k", Transport: "udp:127.0.0.1:1", Authenticator: a, Presence: f.broker, Hub: f.hub})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	f.api = control.NewUnixClient(f.socket)
	return f
}

type handlerTransport struct{ h hid.Handler }

func (t handlerTransport) CBOR(ctx context.Context, msg []byte) ([]byte, error) {
	return t.h.HandleCBOR(ctx, msg), nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func newPKCS8(t *testing.T) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// events subscribes to GET /events and returns a function that reads the
// next event.
func (f *fixture) events(t *testing.T) func() control.Event {
	t.Helper()
	c, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", f.socket)
	}}
	req, _ := http.NewRequestWithContext(c, http.MethodGet, "http://vkey/events", nil)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Fatalf("events Content-Type %q", ct)
	}
	// The subscription exists once the header is sent.
	lines := make(chan control.Event, 64)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			var e control.Event
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Errorf("event line %q: %v", sc.Text(), err)
				return
			}
			lines <- e
		}
	}()
	return func() control.Event {
		t.Helper()
		select {
		case e := <-lines:
			return e
		case <-time.After(10 * time.Second):
			t.Fatal("no event")
			return control.Event{}
		}
	}
}

func TestSocketIsOwnerOnly(t *testing.T) {
	f := newFixture(t, presence.Auto)
	for path, want := range map[string]os.FileMode{f.socket: 0o600, filepath.Dir(f.socket): 0o700} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %o, want %o", path, got, want)
		}
	}
	// A second server on the same socket is refused while the first answers.
	if _, err := control.ListenUnix(f.socket); err == nil || !strings.Contains(err.Error(), "already listens") {
		t.Errorf("second ListenUnix: %v", err)
	}
}

func TestInfoAndRoot(t *testing.T) {
	f := newFixture(t, presence.Touch)
	info, err := f.api.Info(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "k" || info.Transport != "udp:127.0.0.1:1" || info.PID != os.Getpid() || info.Presence != "touch" || info.Pending != nil {
		t.Errorf("info = %+v", info)
	}
	if err := f.api.Do(ctx(t), http.MethodGet, "/", nil, nil); err != nil {
		t.Errorf("GET /: %v", err)
	}
	var apiErr *control.APIError
	if err := f.api.Do(ctx(t), http.MethodGet, "/nope", nil, nil); !errors.As(err, &apiErr) || apiErr.Status != http.StatusNotFound {
		t.Errorf("GET /nope: %v", err)
	}
}

func TestBrowserRequestsRefused(t *testing.T) {
	f := newFixture(t, presence.Touch)
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", f.socket)
	}}
	hc := &http.Client{Transport: tr}
	for name, mod := range map[string]func(*http.Request){
		"origin":   func(r *http.Request) { r.Header.Set("Origin", "https://evil.example") },
		"sec-site": func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "cross-site") },
		"rebind":   func(r *http.Request) { r.Host = "evil.example:8080" },
	} {
		req, _ := http.NewRequest(http.MethodGet, "http://localhost/usb0/touch/on", nil)
		mod(req)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403", name, resp.StatusCode)
		}
	}
	if m := f.broker.Mode(); m != presence.Touch {
		t.Errorf("a refused request changed the presence mode to %s", m)
	}
}

// startRegistration runs a makeCredential in the background.
func startRegistration(f *fixture, rk bool) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := f.ctap.MakeCredential(context.Background(), &ctap2.MakeCredentialRequest{
			ClientDataHash: make([]byte, 32), RP: &ctap2.RPEntity{ID: "example.com"},
			User:             &ctap2.UserEntity{ID: []byte{1, 2, 3}, Name: "alice"},
			PubKeyCredParams: mustParams(),
			Options:          map[string]bool{"rk": rk},
		})
		done <- err
	}()
	return done
}

func mustParams() []ctap2.CredentialParameter {
	return []ctap2.CredentialParameter{{Type: "public-key", Alg: -7}}
}

// waitPending waits for the presenceRequested event.
func waitPending(t *testing.T, next func() control.Event) control.Event {
	t.Helper()
	for {
		if e := next(); e.Type == control.EventPresenceRequested {
			return e
		}
	}
}

func TestPresenceApproveDeny(t *testing.T) {
	f := newFixture(t, presence.Touch)
	next := f.events(t)
	var apiErr *control.APIError
	if _, err := f.api.Approve(ctx(t)); !errors.As(err, &apiErr) || apiErr.Status != http.StatusConflict || apiErr.Message != control.ErrNothingPending {
		t.Fatalf("approve with nothing pending: %v", err)
	}

	done := startRegistration(f, false)
	e := waitPending(t, next)
	if e.Command != "makeCredential" || e.RPID != "example.com" || e.UserName != "alice" {
		t.Errorf("presenceRequested = %+v", e)
	}
	var st control.PresenceState
	if err := f.api.Do(ctx(t), http.MethodGet, "/presence", nil, &st); err != nil || st.Pending == nil || st.Pending.Command != "makeCredential" {
		t.Errorf("GET /presence = %+v, %v", st, err)
	}
	if _, err := f.api.Approve(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("approved registration: %v", err)
	}
	if e := next(); e.Type != control.EventPresenceAnswered || e.Result != "approved" {
		t.Errorf("after approve: %+v", e)
	}
	if e := next(); e.Type != control.EventCredentialAdded || e.RPID != "example.com" || e.CredentialID == "" || e.Source != "ctap" {
		t.Errorf("after registration: %+v", e)
	}

	done = startRegistration(f, false)
	waitPending(t, next)
	if _, err := f.api.Deny(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ctap2.ErrOperationDenied) {
		t.Fatalf("denied registration: %v, want CTAP2_ERR_OPERATION_DENIED", err)
	}
	if e := next(); e.Type != control.EventPresenceAnswered || e.Result != "denied" {
		t.Errorf("after deny: %+v", e)
	}
}

func TestPresenceAutoAndUSBTouch(t *testing.T) {
	f := newFixture(t, presence.Touch)
	next := f.events(t)
	// Holding the button approves the pending request and what follows.
	done := startRegistration(f, false)
	waitPending(t, next)
	if err := f.api.Do(ctx(t), http.MethodGet, "/usb0/touch/on", nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("registration while touched: %v", err)
	}
	if err := <-startRegistration(f, false); err != nil {
		t.Fatalf("second registration while touched: %v", err)
	}
	if err := f.api.Do(ctx(t), http.MethodGet, "/usb0/touch/off", nil, nil); err != nil {
		t.Fatal(err)
	}
	if m := f.broker.Mode(); m != presence.Touch {
		t.Errorf("after touch off: mode %s, want touch", m)
	}
	var st control.PresenceState
	if err := f.api.Do(ctx(t), http.MethodPut, "/presence/auto", map[string]bool{"on": true}, &st); err != nil || st.Mode != "auto" {
		t.Fatalf("auto on: %+v %v", st, err)
	}
	if err := <-startRegistration(f, false); err != nil {
		t.Fatalf("registration with auto on: %v", err)
	}
	if err := f.api.Do(ctx(t), http.MethodPut, "/presence/auto", map[string]bool{"on": false}, &st); err != nil || st.Mode != "touch" {
		t.Fatalf("auto off: %+v %v", st, err)
	}
	var apiErr *control.APIError
	if err := f.api.Do(ctx(t), http.MethodPut, "/presence/auto", map[string]string{"on": "yes"}, nil); !errors.As(err, &apiErr) || apiErr.Status != 400 {
		t.Errorf("bad auto body: %v", err)
	}
}

func TestPowerCycle(t *testing.T) {
	f := newFixture(t, presence.Touch)
	next := f.events(t)
	done := startRegistration(f, false)
	waitPending(t, next)
	// Power off: the pending request is refused, as if the key went away.
	if err := f.api.Do(ctx(t), http.MethodGet, "/usb0/power/off", nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ctap2.ErrOperationDenied) {
		t.Errorf("registration across power off: %v", err)
	}
	if err := f.api.Do(ctx(t), http.MethodGet, "/usb0/power/on", nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := f.api.PowerCycle(ctx(t)); err != nil {
		t.Fatal(err)
	}
	for {
		if e := next(); e.Type == control.EventPowerCycled {
			break
		}
	}
	// A token from before the power cycle no longer works.
	if err := f.ctap.SetPIN(ctx(t), 2, "1234"); err != nil {
		t.Fatal(err)
	}
	tok, err := f.ctap.PINToken(ctx(t), 2, "1234", ctap2.PermCredentialMgmt, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.ctap.CredentialManagement(tok, false).Metadata(ctx(t)); err != nil {
		t.Fatalf("metadata before power cycle: %v", err)
	}
	if err := f.api.PowerCycle(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.ctap.CredentialManagement(tok, false).Metadata(ctx(t)); !errors.Is(err, ctap2.ErrPINAuthInvalid) {
		t.Errorf("metadata with a token from before the power cycle: %v, want CTAP2_ERR_PIN_AUTH_INVALID", err)
	}
}

func TestCredentialsLifecycle(t *testing.T) {
	f := newFixture(t, presence.Auto)
	next := f.events(t)
	priv := newPKCS8(t)
	id := []byte("my-credential-id-0001")
	blob := []byte(strings.Repeat("large blob ", 20))
	body := map[string]any{
		"credentialId": b64(id), "isResidentCredential": true, "rpId": "example.com",
		"privateKey": b64(priv), "userHandle": b64([]byte("user-1")), "userName": "alice",
		"signCount": 41, "largeBlob": b64(blob), "backupEligibility": true, "backupState": false,
	}
	var got control.Credential
	if err := f.api.Do(ctx(t), http.MethodPost, "/credentials", body, &got); err != nil {
		t.Fatal(err)
	}
	if got.CredentialID != b64(id) || got.SignCount != 41 || !got.IsResidentCredential || got.RPID != "example.com" ||
		got.LargeBlob == nil || *got.LargeBlob != b64(blob) || !got.BackupEligibility || got.BackupState || got.Algorithm != -7 {
		t.Errorf("added = %+v", got)
	}
	if e := next(); e.Type != control.EventCredentialAdded || e.CredentialID != b64(id) || e.Source != "control" {
		t.Errorf("add event = %+v", e)
	}
	var apiErr *control.APIError
	if err := f.api.Do(ctx(t), http.MethodPost, "/credentials", body, nil); !errors.As(err, &apiErr) || apiErr.Status != http.StatusConflict {
		t.Errorf("adding the same ID again: %v", err)
	}
	bad := map[string]any{"rpId": "example.com", "privateKey": b64([]byte("junk"))}
	if err := f.api.Do(ctx(t), http.MethodPost, "/credentials", bad, nil); !errors.As(err, &apiErr) || apiErr.Status != 400 {
		t.Errorf("adding junk: %v", err)
	}

	// The credential works over CTAP: a discoverable assertion, counter 42,
	// BE set, and the large blob readable by a platform.
	resp, err := f.ctap.GetAssertion(ctx(t), &ctap2.GetAssertionRequest{RPID: "example.com", ClientDataHash: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	if string(resp.Credential.ID) != string(id) || resp.AuthData[32]&0x18 != 0x08 || counter(resp.AuthData) != 42 {
		t.Errorf("assertion: id %q flags %#x counter %d", resp.Credential.ID, resp.AuthData[32], counter(resp.AuthData))
	}
	if e := nextOf(next, control.EventCredentialAsserted); e.CredentialID != b64(id) || e.SignCount == nil || *e.SignCount != 42 {
		t.Errorf("assert event = %+v", e)
	}
	if err := f.ctap.SetPIN(ctx(t), 2, "1234"); err != nil {
		t.Fatal(err)
	}
	tok, err := f.ctap.PINToken(ctx(t), 2, "1234", ctap2.PermCredentialMgmt, "")
	if err != nil {
		t.Fatal(err)
	}
	creds, err := f.ctap.CredentialManagement(tok, false).All(ctx(t))
	if err != nil || len(creds) != 1 || creds[0].LargeBlobKey == nil {
		t.Fatalf("credential management sees %+v, %v", creds, err)
	}
	if lb, err := f.ctap.LargeBlob(ctx(t), creds[0].LargeBlobKey); err != nil || string(lb) != string(blob) {
		t.Errorf("large blob through CTAP: %q, %v", lb, err)
	}

	// Properties.
	var patched control.Credential
	if err := f.api.Do(ctx(t), http.MethodPatch, "/credentials/"+b64(id), map[string]any{"signCount": 1000, "backupState": true}, &patched); err != nil {
		t.Fatal(err)
	}
	if patched.SignCount != 1000 || !patched.BackupState {
		t.Errorf("patched = %+v", patched)
	}
	if err := f.api.Do(ctx(t), http.MethodPatch, "/credentials/"+b64(id), map[string]any{"backupEligibility": false}, nil); !errors.As(err, &apiErr) || apiErr.Status != 400 {
		t.Errorf("BS without BE: %v", err)
	}
	resp, err = f.ctap.GetAssertion(ctx(t), &ctap2.GetAssertionRequest{RPID: "example.com", ClientDataHash: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	if c := counter(resp.AuthData); c <= 1000 || resp.AuthData[32]&0x18 != 0x18 {
		t.Errorf("after PATCH: counter %d flags %#x, want > 1000 and BE|BS", c, resp.AuthData[32])
	}

	// List, get, delete.
	var list []control.Credential
	if err := f.api.Do(ctx(t), http.MethodGet, "/credentials?rpId=example.com", nil, &list); err != nil || len(list) != 1 {
		t.Fatalf("list = %+v, %v", list, err)
	}
	if err := f.api.Do(ctx(t), http.MethodGet, "/credentials?rpId=other.example", nil, &list); err != nil || len(list) != 0 {
		t.Fatalf("list other rp = %+v, %v", list, err)
	}
	if err := f.api.Do(ctx(t), http.MethodDelete, "/credentials/"+b64(id), nil, nil); err != nil {
		t.Fatal(err)
	}
	for {
		e := next()
		if e.Type == control.EventCredentialDeleted {
			if e.CredentialID != b64(id) || e.RPID != "example.com" {
				t.Errorf("delete event = %+v", e)
			}
			break
		}
	}
	if err := f.api.Do(ctx(t), http.MethodGet, "/credentials/"+b64(id), nil, nil); !errors.As(err, &apiErr) || apiErr.Status != 404 {
		t.Errorf("get after delete: %v", err)
	}
	if _, err := f.ctap.GetAssertion(ctx(t), &ctap2.GetAssertionRequest{RPID: "example.com", ClientDataHash: make([]byte, 32)}); !errors.Is(err, ctap2.ErrNoCredentials) {
		t.Errorf("assertion after delete: %v", err)
	}

	// Remove all.
	for i := 0; i < 3; i++ {
		nb := map[string]any{"rpId": "example.com", "privateKey": b64(newPKCS8(t))}
		if err := f.api.Do(ctx(t), http.MethodPost, "/credentials", nb, nil); err != nil {
			t.Fatal(err)
		}
	}
	var removed map[string]int
	if err := f.api.Do(ctx(t), http.MethodDelete, "/credentials", nil, &removed); err != nil || removed["removed"] != 3 {
		t.Errorf("remove all = %v, %v", removed, err)
	}
}

// nextOf skips to the next event of type typ.
func nextOf(next func() control.Event, typ string) control.Event {
	for {
		if e := next(); e.Type == typ {
			return e
		}
	}
}

func counter(ad []byte) uint32 {
	return uint32(ad[33])<<24 | uint32(ad[34])<<16 | uint32(ad[35])<<8 | uint32(ad[36])
}

// TestOtherUserRefused connects to the loopback address as another user
// (needs root to become one) and expects 403.
func TestOtherUserRefused(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to connect as another user")
	}
	py := "/usr/bin/python3" // readable by every user, unlike a pyenv shim
	if _, err := os.Stat(py); err != nil {
		t.Skip("/usr/bin/python3 is not installed")
	}
	f := newFixture(t, presence.Touch)
	ln, err := control.ListenLoopback("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := control.New(control.Config{Name: "k", Authenticator: f.a, Presence: f.broker, Hub: f.hub})
	c, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = srv.Serve(c, ln) }()
	url := "http://" + ln.Addr().String() + "/info"
	script := `import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(sys.argv[1]); print(200)
except urllib.error.HTTPError as e:
    print(e.code)`
	for _, tc := range []struct {
		uid  uint32
		want string
	}{{0, "200"}, {65534, "403"}} {
		cmd := exec.Command(py, "-c", script, url)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: tc.uid, Gid: tc.uid}}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("uid %d: %v\n%s", tc.uid, err, out)
		}
		if got := strings.TrimSpace(string(out)); got != tc.want {
			t.Errorf("uid %d: status %s, want %s", tc.uid, got, tc.want)
		}
	}
	// The unix socket checks SO_PEERCRED even when its folder and mode
	// would let another user in.
	for _, p := range []string{filepath.Dir(filepath.Dir(f.socket)), filepath.Dir(f.socket)} {
		if err := os.Chmod(p, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(f.socket, 0o666); err != nil {
		t.Fatal(err)
	}
	unixScript := `import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(b"GET /info HTTP/1.0\r\nHost: vkey\r\n\r\n")
print(s.recv(64).split()[1].decode())`
	for _, tc := range []struct {
		uid  uint32
		want string
	}{{0, "200"}, {65534, "403"}} {
		cmd := exec.Command(py, "-c", unixScript, f.socket)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: tc.uid, Gid: tc.uid}}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("unix socket as uid %d: %v\n%s", tc.uid, err, out)
		}
		if got := strings.TrimSpace(string(out)); got != tc.want {
			t.Errorf("unix socket as uid %d: status %s, want %s", tc.uid, got, tc.want)
		}
	}
	if _, err := control.ListenLoopback("0.0.0.0:0"); err == nil {
		t.Error("ListenLoopback accepted a non-loopback address")
	}
}

// TestAddEd25519WithoutID: the key makes the ID when none is given, and an
// Ed25519 PKCS#8 key gives an EdDSA credential usable with an allow list.
func TestAddEd25519WithoutID(t *testing.T) {
	f := newFixture(t, presence.Auto)
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	var got control.Credential
	if err := f.api.Do(ctx(t), http.MethodPost, "/credentials", map[string]any{"rpId": "example.com", "privateKey": b64(der)}, &got); err != nil {
		t.Fatal(err)
	}
	if got.Algorithm != -8 || got.CredentialID == "" || got.IsResidentCredential || got.PrivateKey != "" {
		t.Errorf("added = %+v (a device-bound key is never returned)", got)
	}
	id, _ := base64.RawURLEncoding.DecodeString(got.CredentialID)
	msg := make([]byte, 32)
	resp, err := f.ctap.GetAssertion(ctx(t), &ctap2.GetAssertionRequest{RPID: "example.com", ClientDataHash: msg,
		AllowList: []ctap2.CredentialDescriptor{{Type: "public-key", ID: id}}})
	if err != nil {
		t.Fatal(err)
	}
	if !ed25519.Verify(priv.Public().(ed25519.PublicKey), append(resp.AuthData, msg...), resp.Signature) {
		t.Error("the assertion is not signed by the added key")
	}
	if _, err := f.ctap.GetAssertion(ctx(t), &ctap2.GetAssertionRequest{RPID: "other.example", ClientDataHash: msg,
		AllowList: []ctap2.CredentialDescriptor{{Type: "public-key", ID: id}}}); !errors.Is(err, ctap2.ErrNoCredentials) {
		t.Errorf("the credential answered for another RP: %v", err)
	}
}
