package vmtest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestVMUHIDDevice boots the guest with a small program that creates a
// uhid device through hid.OpenUHID and serves a fake authenticator, and
// checks that the kernel makes it a hidraw node that libfido2 enumerates
// and talks to. It runs only with VKEY_VM=1 (make vmtest).
func TestVMUHIDDevice(t *testing.T) {
	Require(t)
	fido2Token, err := exec.LookPath("fido2-token")
	if err != nil {
		t.Skip("skipping the VM test: fido2-token not found (install fido2-tools)")
	}
	dir := t.TempDir()
	guest := filepath.Join(dir, "uhidguest")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", guest, "./testdata/uhidguest")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the guest program: %v\n%s", err, out)
	}

	// Typically 3 s; generous for a host shared with other builds.
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	k := TestKernel(t, ctx)

	var mods []string
	for _, m := range k.Modules {
		mods = append(mods, "/lib/modules/"+filepath.Base(m))
	}
	body := `
uhidguest & pid=$!
i=0
while [ ! -e /dev/hidraw0 ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
[ -e /dev/hidraw0 ] || { echo "no /dev/hidraw0"; exit 10; }
timeout 10 fido2-token -L > /tmp/list || exit 11
cat /tmp/list
grep -q '^/dev/hidraw0: vendor=0x1209, product=0x0001' /tmp/list || exit 12
timeout 10 fido2-token -I /dev/hidraw0 || exit 13
kill $pid
i=0
while [ -e /dev/hidraw0 ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
[ ! -e /dev/hidraw0 ] || { echo "hidraw0 still there after SIGTERM"; exit 14; }
`
	initrd := filepath.Join(dir, "initramfs.cpio.gz")
	t0 := time.Now()
	err = Initramfs(ctx, initrd, InitramfsSpec{
		Init:     InitScript(body, mods...),
		Modules:  k.Modules,
		Binaries: map[string]string{"bin/uhidguest": guest},
		Tools:    []string{fido2Token},
	})
	Skip(t, err)
	t.Logf("initramfs built in %v", time.Since(t0).Round(time.Millisecond))

	res, err := Run(ctx, RunOptions{Kernel: k.Vmlinux, Initrd: initrd})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("guest ran in %v:\n%s", res.Elapsed.Round(time.Millisecond), res.Console)
	if res.ExitCode != 0 {
		t.Fatalf("guest exit code %d", res.ExitCode)
	}
	if !strings.Contains(res.Console, "aaguid: ") {
		t.Error("fido2-token -I printed no aaguid")
	}
}

// TestVMTPMDevice boots the guest with swtpm attached and checks that the
// kernel's tpm_tis driver finds it (/dev/tpmrm0). It runs only with VKEY_VM=1.
func TestVMTPMDevice(t *testing.T) {
	Require(t)
	if _, err := exec.LookPath("swtpm"); err != nil {
		t.Skip("skipping the VM test: swtpm not found (install swtpm)")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	k := TestKernel(t, ctx)
	initrd := filepath.Join(t.TempDir(), "initramfs.cpio.gz")
	body := `
i=0
while [ ! -e /dev/tpmrm0 ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
[ -c /dev/tpmrm0 ] || { echo "no /dev/tpmrm0"; exit 20; }
cat /sys/class/tpm/tpm0/tpm_version_major
[ "$(cat /sys/class/tpm/tpm0/tpm_version_major)" = 2 ] || exit 21
`
	Skip(t, Initramfs(ctx, initrd, InitramfsSpec{Init: InitScript(body)}))
	res, err := Run(ctx, RunOptions{Kernel: k.Vmlinux, Initrd: initrd, TPM: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("guest ran in %v:\n%s", res.Elapsed.Round(time.Millisecond), res.Console)
	if res.ExitCode != 0 {
		t.Fatalf("guest exit code %d", res.ExitCode)
	}
}
