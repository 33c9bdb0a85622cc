package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vkey-dev/vkey/internal/clientsummary"
	"github.com/vkey-dev/vkey/internal/keyproc"
)

// TestSystemdUnitVerifies: the unit `vkey systemd-unit` prints passes
// systemd-analyze verify, and awkward state paths survive its quoting.
func TestSystemdUnitVerifies(t *testing.T) {
	clientsummary.Record(t, "systemd-analyze verify", "the unit vkey systemd-unit prints")
	bin := keyproc.Binary(t)
	state := filepath.Join(t.TempDir(), `my "keys" $HOME 100%`)
	var out bytes.Buffer
	cmd := exec.Command(bin, "systemd-unit", "--name", "work", "--state", state, "--presence", "desktop")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("vkey systemd-unit: %v\n%s", err, out.String())
	}
	unit := out.String()
	want := `ExecStart="` + bin + `" "run" "--name" "work" "--transport" "uhid" "--presence" "desktop" "--state" "` +
		strings.NewReplacer(`"`, `\"`, "$", "$$", "%", "%%").Replace(state) + `"`
	if !strings.Contains(unit, want+"\n") {
		t.Errorf("unit lacks\n%s\n---\n%s", want, unit)
	}
	if !strings.Contains(unit, "WantedBy=default.target") {
		t.Errorf("the unit is not started at login:\n%s", unit)
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (package systemd): the unit was not verified")
	}
	path := filepath.Join(t.TempDir(), "vkey-work.service")
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	// --man=no: the man page it names is installed by make install, not here.
	if b, err := exec.Command(analyze, "verify", "--man=no", path).CombinedOutput(); err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s\n---\n%s", err, b, unit)
	}
	// The check is real: a unit whose ExecStart is not absolute fails it.
	bad := filepath.Join(t.TempDir(), "bad.service")
	if err := os.WriteFile(bad, []byte(strings.Replace(unit, `ExecStart="`+bin, `ExecStart="vkey`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(analyze, "verify", "--man=no", bad).CombinedOutput(); err == nil {
		t.Errorf("systemd-analyze verify accepted a unit with a missing binary:\n%s", b)
	}

	if b, err := exec.Command(bin, "systemd-unit", "--presence", "prompt").CombinedOutput(); err == nil {
		t.Errorf("a unit with --presence prompt was printed:\n%s", b)
	}
}
