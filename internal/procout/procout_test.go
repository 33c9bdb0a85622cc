package procout

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestReadWhileRunning reads the output of a process that is still
// writing it (run with -race to see why Buffer exists).
func TestReadWhileRunning(t *testing.T) {
	var b Buffer
	cmd := exec.Command("/bin/sh", "-c", `for i in 1 2 3 4 5; do echo line$i; echo err$i >&2; sleep 0.01; done`)
	cmd.Stdout, cmd.Stderr = &b, &b
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(b.String(), "line1") && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"line1", "line5", "err1", "err5"} {
		if !strings.Contains(out, want) {
			t.Errorf("output %q lacks %q", out, want)
		}
	}
}
