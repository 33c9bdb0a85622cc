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
)

// BenchmarkRunStartup measures how long `vkey run --ephemeral --transport
// pty` takes from exec until it has answered a getInfo over its pty (goal:
// under 50 ms).
func BenchmarkRunStartup(b *testing.B) {
	bin := keyproc.Binary(b)
	dir := b.TempDir()
	var total time.Duration
	for i := 0; i < b.N; i++ {
		ready := filepath.Join(dir, "ready")
		os.Remove(ready)
		start := time.Now()
		cmd := exec.Command(bin, "run", "--ephemeral", "--transport", "pty", "--presence", "auto", "--ready-file", ready, "--name", "bench")
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
