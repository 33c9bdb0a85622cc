package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vkey-dev/vkey/ctap2/client"
	"github.com/vkey-dev/vkey/hid"
	"github.com/vkey-dev/vkey/internal/keyproc"
	"github.com/vkey-dev/vkey/keystore"
	"github.com/vkey-dev/vkey/keystore/storetest"
)

// BenchmarkRunStartup measures how long `vkey run --ephemeral --transport
// pty` takes from exec until it has answered a getInfo over its pty (goal:
// under 50 ms).
func BenchmarkRunStartup(b *testing.B) {
	benchStartup(b, "--ephemeral")
}

// BenchmarkRunStartupLargeState measures the same with a persistent state
// holding 100,000 credentials (goal: under 50 ms; issue 14).
func BenchmarkRunStartupLargeState(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "state")
	// The key file source: no keyring, TPM or argon2id in the measure.
	f, mk, err := keystore.OpenState(context.Background(), dir, keystore.MasterKeyPrefs{}, keystore.FileOptions{})
	if err != nil {
		b.Fatal(err)
	}
	f.Close()
	if err := storetest.BuildState(dir, keystore.FileOptions{MasterKey: mk.Key, MaxDiscoverable: keystore.Unlimited}, 100_000); err != nil {
		b.Fatal(err)
	}
	// A sub-benchmark, so that the state is built once while Go sizes b.N.
	b.Run("100000-stored", func(b *testing.B) {
		benchStartup(b, "--state", dir, "--keys", "software", "--max-credentials", "0")
	})
}

// benchStartup runs `vkey run ARGS --transport pty` b.N times and reports
// the mean time from exec to its first answer (a getInfo over the pty).
func benchStartup(b *testing.B, args ...string) {
	bin := keyproc.Binary(b)
	dir := b.TempDir()
	var total time.Duration
	for i := 0; i < b.N; i++ {
		ready := filepath.Join(dir, "ready")
		os.Remove(ready)
		start := time.Now()
		cmd := exec.Command(bin, append([]string{"run", "--transport", "pty", "--presence", "auto", "--ready-file", ready, "--name", "bench"}, args...)...)
		cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+dir)
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		var where string
		for {
			if data, err := os.ReadFile(ready); err == nil && strings.HasSuffix(string(data), "\n") {
				where = strings.TrimSpace(string(data))
				break
			}
			if time.Since(start) > 10*time.Second {
				b.Fatal("vkey did not start")
			}
			time.Sleep(200 * time.Microsecond)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		hc, err := hid.Dial(ctx, where)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := client.New(hc).GetInfo(ctx); err != nil {
			b.Fatal(err)
		}
		elapsed := time.Since(start)
		cancel()
		hc.Close()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		total += elapsed
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms-to-first-answer")
}
