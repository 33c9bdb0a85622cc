//go:build linux

package vkey_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vkey-dev/vkey"
	"github.com/vkey-dev/vkey/hid"
	"github.com/vkey-dev/vkey/presence"
)

// recordingProxy stands between a host and a key served on a pty: the
// host opens the proxy's own pty; every report is passed on and kept.
type recordingProxy struct {
	front *hid.PTYPort // what the host opens
	back  *os.File     // the key's pty, opened as a host would

	mu      sync.Mutex
	toHost  [][]byte
	stopped chan struct{}
}

func newRecordingProxy(t *testing.T, keyPTY string) *recordingProxy {
	t.Helper()
	front, err := hid.OpenPTY()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	back, err := os.OpenFile(keyPTY, os.O_RDWR, 0)
	if err != nil {
		front.Close()
		t.Fatal(err)
	}
	p := &recordingProxy{front: front, back: back, stopped: make(chan struct{})}
	go func() { // host -> key: 65 bytes a report, report ID 0 first
		for {
			r, err := front.ReadReport()
			if err != nil {
				return
			}
			if _, err := back.Write(append([]byte{0}, r...)); err != nil {
				return
			}
		}
	}()
	go func() { // key -> host: 64 bytes a report
		defer close(p.stopped)
		for {
			r := make([]byte, hid.ReportSize)
			if _, err := io.ReadFull(back, r); err != nil {
				return
			}
			p.mu.Lock()
			p.toHost = append(p.toHost, r)
			p.mu.Unlock()
			if err := front.WriteReport(r); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		front.Close()
		back.Close()
	})
	return p
}

// keepalives counts the CTAPHID_KEEPALIVE reports with status.
func (p *recordingProxy) keepalives(status byte) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, r := range p.toHost {
		// CID (4) | CTAPHID_KEEPALIVE (0x80|0x3B) | BCNT 1 | status
		if r[4] == 0xBB && r[5] == 0 && r[6] == 1 && r[7] == status {
			n++
		}
	}
	return n
}

// TestPTYKeepaliveUpNeeded: a key built with package vkey alone, served
// on a pty, registers a credential for libfido2's fido2-cred while a touch
// is pending; the host sees KEEPALIVE(STATUS_UPNEEDED) on the wire (CTAP
// 2.1 section 11.2.9.1.6) until the touch, and the registration succeeds.
func TestPTYKeepaliveUpNeeded(t *testing.T) {
	tool, err := exec.LookPath("fido2-cred")
	if err != nil {
		t.Skip("fido2-cred not installed (Debian: apt-get install fido2-tools)")
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	k, err := vkey.New(ctx, vkey.Options{Transport: vkey.PTY, Presence: presence.Touch, Attestation: "packed-self"})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	proxy := newRecordingProxy(t, k.Address)

	b64 := func(n int) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, n)) }
	cmd := exec.CommandContext(ctx, tool, "-M", proxy.front.Path(), "es256")
	cmd.Stdin = strings.NewReader(b64(32) + "\nexample.com\nalice\n" + b64(16) + "\n")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, pending := k.Presence.Pending(); pending && proxy.keepalives(2) >= 2 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("fido2-cred ended before the touch: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no KEEPALIVE(UPNEEDED) while the touch was pending (pending: %v)", k.Presence.Mode())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !k.Presence.Approve() {
		t.Fatal("no request to approve")
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("fido2-cred -M: %v\n%s", err, out.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("fido2-cred did not finish after the touch")
	}
	if n := strings.Count(out.String(), "\n"); n < 4 {
		t.Errorf("fido2-cred -M printed %d lines:\n%s", n, out.String())
	}
	t.Logf("%d KEEPALIVE(UPNEEDED) reports", proxy.keepalives(2))
}
