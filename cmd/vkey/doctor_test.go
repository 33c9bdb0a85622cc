package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDoctorUdevRuleFromPackage: with the rule where the Debian package
// puts it (/usr/lib/udev/rules.d), doctor names it as the active rule and
// does not tell the user to copy it to /etc; a copy in /etc is the active
// one and overrides the package's; with none, the fix installs it in /etc.
func TestDoctorUdevRuleFromPackage(t *testing.T) {
	denied := errors.New("permission denied")
	env := func(root string) doctorEnv {
		return doctorEnv{root: root,
			uhidModule: func() error { return nil },
			uhidUsable: func() error { return denied },
			hidraw:     func() error { return nil },
			tpm:        func() error { return nil },
		}
	}
	put := func(root, dir string) {
		t.Helper()
		p := filepath.Join(root, dir, udevRuleName)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(udevRules), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(root string) (string, int) {
		var b strings.Builder
		n := doctorWith(&b, env(root))
		return b.String(), n
	}

	pkg := t.TempDir()
	put(pkg, "usr/lib/udev/rules.d")
	out, n := run(pkg)
	if !strings.Contains(out, "ok    udev rule /usr/lib/udev/rules.d/70-vkey.rules (active)") {
		t.Errorf("the package's rule is not named as active:\n%s", out)
	}
	if strings.Contains(out, "tee /etc/udev") {
		t.Errorf("doctor tells the user to copy a rule the package installed:\n%s", out)
	}
	if n != 1 || !strings.Contains(out, "udevadm control --reload") {
		t.Errorf("/dev/uhid not writable: want one problem whose fix reloads the rule, got %d:\n%s", n, out)
	}

	both := t.TempDir()
	put(both, "usr/lib/udev/rules.d")
	put(both, "etc/udev/rules.d")
	if out, _ := run(both); !strings.Contains(out, "ok    udev rule /etc/udev/rules.d/70-vkey.rules (active); it overrides /usr/lib/udev/rules.d/70-vkey.rules") {
		t.Errorf("the rule in /etc must be the active one:\n%s", out)
	}

	// /lib as a link to /usr/lib (merged /usr): one rule, not two.
	merged := t.TempDir()
	put(merged, "usr/lib/udev/rules.d")
	if err := os.Symlink("usr/lib", filepath.Join(merged, "lib")); err != nil {
		t.Fatal(err)
	}
	if out, _ := run(merged); strings.Contains(out, "overrides") {
		t.Errorf("one file seen through /lib and /usr/lib counted twice:\n%s", out)
	}

	out, n = run(t.TempDir())
	if n != 2 || !strings.Contains(out, "FAIL  udev rule") || !strings.Contains(out, "vkey udev-rules | sudo tee /etc/udev/rules.d/70-vkey.rules") {
		t.Errorf("without a rule doctor must say how to install it (2 problems), got %d:\n%s", n, out)
	}

	// root needs no rule: its absence is said, not counted.
	e := env(t.TempDir())
	e.superuser = true
	var b strings.Builder
	if n := doctorWith(&b, e); n != 1 || !strings.Contains(b.String(), "root needs none") {
		t.Errorf("root without a rule: %d problems, want 1 (/dev/uhid):\n%s", n, b.String())
	}

	// Nothing to fix: no rule and no need for one is not a problem.
	e = env(t.TempDir())
	e.uhidUsable = func() error { return nil }
	b.Reset()
	if n := doctorWith(&b, e); n != 0 || !strings.Contains(b.String(), "not needed") {
		t.Errorf("no rule needed: %d problems:\n%s", n, b.String())
	}
}
