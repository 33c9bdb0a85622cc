//go:build linux

package vkey_test

import (
	"context"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/vkey-dev/vkey"
	"github.com/vkey-dev/vkey/ctap2/client"
	"github.com/vkey-dev/vkey/hid"
	"github.com/vkey-dev/vkey/presence"
)

// stopBudget is how long a key may take to stop, whatever its clients do
// (an earlier key took about 2 s once a client had opened its pty).
const stopBudget = 200 * time.Millisecond

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// TestPTYStopWithClient: a key served on a pty stops within stopBudget of
// its context's cancellation while a client holds the pty open: idle after
// a transaction, waiting for a touch, or leaving the key's replies unread
// (the key blocked writing to it). It leaves no goroutine and no file
// descriptor behind.
func TestPTYStopWithClient(t *testing.T) {
	cases := []struct {
		name string
		// attach opens the key's pty as a host would and leaves it in the
		// case's state; it returns what closes the host's end.
		attach func(t *testing.T, k *vkey.Key) func()
	}{
		{"idle client", func(t *testing.T, k *vkey.Key) func() {
			c, err := hid.Dial(t.Context(), k.Address)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Ping(t.Context(), []byte("ping")); err != nil {
				t.Fatal(err)
			}
			return func() { c.Close() }
		}},
		{"touch pending", func(t *testing.T, k *vkey.Key) func() {
			c, err := hid.Dial(t.Context(), k.Address)
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				_ = client.New(c).Selection(context.Background())
			}()
			deadline := time.Now().Add(5 * time.Second)
			for {
				if _, pending := k.Presence.Pending(); pending {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("selection never asked for a touch")
				}
				time.Sleep(5 * time.Millisecond)
			}
			return func() { c.Close(); <-done }
		}},
		{"replies unread", func(t *testing.T, k *vkey.Key) func() {
			f, err := os.OpenFile(k.Address, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			// CTAPHID_INIT on the broadcast channel, report ID 0 first:
			// 200 replies of 64 bytes overflow the tty's buffer.
			init := make([]byte, 1+hid.ReportSize)
			copy(init[1:], []byte{0xff, 0xff, 0xff, 0xff, 0x86, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8})
			for range 200 {
				if _, err := f.Write(init); err != nil {
					t.Fatal(err)
				}
			}
			time.Sleep(50 * time.Millisecond) // the key answers what it can
			return func() { f.Close() }
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fds, goroutines := openFDs(t), runtime.NumGoroutine()
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			k, err := vkey.New(ctx, vkey.Options{Transport: vkey.PTY, Presence: presence.Touch})
			if err != nil {
				t.Fatal(err)
			}
			detach := tc.attach(t, k)
			start := time.Now()
			cancel()
			select {
			case <-k.Done():
			case <-time.After(10 * time.Second):
				t.Fatal("the key did not stop")
			}
			took := time.Since(start)
			t.Logf("stopped in %v", took)
			if took > stopBudget {
				t.Errorf("the key took %v to stop with a client attached, want < %v", took, stopBudget)
			}
			if err := k.Wait(); err != nil {
				t.Errorf("Wait: %v", err)
			}
			detach()
			// Goroutines that end on their own (timers, the client's
			// reader) are given a moment.
			deadline := time.Now().Add(2 * time.Second)
			for openFDs(t) > fds || runtime.NumGoroutine() > goroutines {
				if time.Now().After(deadline) {
					buf := make([]byte, 1<<16)
					t.Fatalf("after stop: %d fds (was %d), %d goroutines (was %d)\n%s",
						openFDs(t), fds, runtime.NumGoroutine(), goroutines, buf[:runtime.Stack(buf, true)])
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}
