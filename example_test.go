package vkey_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/vkey-dev/vkey"
	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/ctap2/client"
	"github.com/vkey-dev/vkey/hid"
	"github.com/vkey-dev/vkey/keystore"
	"github.com/vkey-dev/vkey/presence"
)

// registration is a makeCredential request for a discoverable credential.
func registration(rpID, user string) *ctap2.MakeCredentialRequest {
	return &ctap2.MakeCredentialRequest{
		ClientDataHash:   make([]byte, 32),
		RP:               &ctap2.RPEntity{ID: rpID},
		User:             &ctap2.UserEntity{ID: []byte(user), Name: user},
		PubKeyCredParams: []ctap2.CredentialParameter{{Type: "public-key", Alg: -7}},
		Options:          map[string]bool{"rk": true},
	}
}

// An in-process key (the zero Options: in memory, every touch approved)
// and a CTAP2 client talking CTAPHID to it; an Observer sees what the
// authenticator did.
func ExampleNew() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	k, err := vkey.New(ctx, vkey.Options{
		Observer: ctap2.ObserverFunc(func(_ context.Context, e ctap2.Event) {
			if e, ok := e.(ctap2.CredentialCreated); ok {
				fmt.Println("event: credential created for", e.RPID, "discoverable:", e.Discoverable)
			}
		}),
	})
	if err != nil {
		panic(err)
	}
	conn, err := k.Dial(ctx)
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	c := client.New(conn)
	att, err := c.MakeCredential(ctx, registration("example.com", "alice"))
	if err != nil {
		panic(err)
	}
	fmt.Println("attestation format:", att.Format)
	cancel()
	fmt.Println("stopped:", k.Wait())
	// Output:
	// event: credential created for example.com discoverable: true
	// attestation format: packed
	// stopped: <nil>
}

// CTAPHID on an in-process pipe, wired by hand: a ctap2 authenticator,
// served by a hid.Device through vkey.Handler, with vkey.Keepalive so that
// a waiting touch sends KEEPALIVE(UPNEEDED).
func Example_pipe() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := ctap2.New(ctap2.Options{Store: keystore.NewMemory(0), Presence: ctap2.AutoPresence{}, Observer: vkey.Keepalive})
	if err != nil {
		panic(err)
	}
	host, device := hid.Pipe()
	d := hid.NewDevice(vkey.Handler(a), hid.DeviceConfig{MaxMsgSize: a.MaxMsgSize()})
	go d.Serve(ctx, device)
	conn, err := hid.NewClient(ctx, host)
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	pong, err := conn.Ping(ctx, []byte("hello"))
	if err != nil {
		panic(err)
	}
	info, err := client.New(conn).GetInfo(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Printf("ping: %s\n", pong)
	fmt.Println("AAGUID:", string(info.AAGUID))
	// Output:
	// ping: hello
	// AAGUID: vkey-virtual-key
}

// A key on a pty, driven by a second process: libfido2's fido2-token
// (Debian: fido2-tools) opens the pty as it would a /dev/hidrawN.
func Example_pty() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	k, err := vkey.New(ctx, vkey.Options{Transport: vkey.PTY})
	if err != nil {
		panic(err)
	}
	defer k.Close()
	out, err := exec.CommandContext(ctx, "fido2-token", "-I", k.Address).CombinedOutput()
	if err != nil {
		panic(fmt.Sprintf("fido2-token -I: %v\n%s", err, out))
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "aaguid:") {
			fmt.Println(line)
		}
	}
	// Output:
	// aaguid: 766b65792d7669727475616c2d6b6579
}

// The control API from Go: a key that waits for touches, its control API
// on a unix socket, and an HTTP client that approves the pending request.
func Example_controlAPI() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir, err := os.MkdirTemp("", "vkey-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	socket := filepath.Join(dir, "example.sock")
	k, err := vkey.New(ctx, vkey.Options{Presence: presence.Touch, ControlSocket: socket})
	if err != nil {
		panic(err)
	}
	defer k.Close()
	api := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", socket)
	}}}
	call := func(method, path string) string {
		req, _ := http.NewRequestWithContext(ctx, method, "http://vkey"+path, nil)
		resp, err := api.Do(req)
		if err != nil {
			panic(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(bytes.TrimSpace(b))
	}

	conn, err := k.Dial(ctx)
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	done := make(chan error, 1)
	go func() {
		_, err := client.New(conn).MakeCredential(ctx, registration("example.com", "alice"))
		done <- err
	}()
	for {
		var state struct {
			Pending *struct {
				Command string `json:"command"`
				RPID    string `json:"rpId"`
			} `json:"pending"`
		}
		if err := json.Unmarshal([]byte(call("GET", "/presence")), &state); err != nil {
			panic(err)
		}
		if state.Pending != nil {
			fmt.Println("pending:", state.Pending.Command, "for", state.Pending.RPID)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	call("POST", "/presence/approve")
	fmt.Println("makeCredential:", <-done)
	var creds []struct {
		RPID     string `json:"rpId"`
		UserName string `json:"userName"`
	}
	if err := json.Unmarshal([]byte(call("GET", "/credentials")), &creds); err != nil {
		panic(err)
	}
	fmt.Printf("stored: %+v\n", creds)
	// Output:
	// pending: makeCredential for example.com
	// makeCredential: <nil>
	// stored: [{RPID:example.com UserName:alice}]
}
