// Package vmtest boots a tiny qemu guest with Debian's own kernel, to test
// what the development machine's kernel cannot: uhid, hidraw and a TPM
// character device. It follows the measured recipe in the project's VM
// README: the kernel package is fetched with apt-get download (never
// installed), the guest is a microvm under TCG booting the uncompressed
// kernel with a gzip newc initramfs, and the guest reports its exit code
// through qemu's isa-debug-exit device.
//
// A test uses it in three steps:
//
//	k, err := vmtest.Kernel(ctx, cacheDir)           // cached under build/vm
//	err = vmtest.Initramfs(ctx, out, vmtest.InitramfsSpec{...})
//	res, err := vmtest.Run(ctx, vmtest.RunOptions{Kernel: k.Vmlinux, Initrd: out})
//
// Errors that mean "this machine cannot run the VM" (no qemu, no static
// busybox, no apt-get, no network for apt-get download) match
// ErrUnavailable, so tests can skip with a clear message (see Skip).
package vmtest

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vkey-dev/vkey/internal/clientsummary"
)

// ErrUnavailable is matched (errors.Is) by errors that mean the VM cannot
// run on this machine: a tool is missing or the kernel cannot be fetched.
var ErrUnavailable = errors.New("vm test prerequisites unavailable")

// unavailable wraps a reason as ErrUnavailable.
func unavailable(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnavailable, fmt.Sprintf(format, args...))
}

// Check reports whether the host tools the harness needs are present:
// qemu-system-x86_64, a statically linked busybox, apt-get, apt-cache,
// dpkg-deb and xz. The error matches ErrUnavailable and names what to install.
func Check() error {
	var missing []string
	for _, tool := range []struct{ bin, pkg string }{
		{"qemu-system-x86_64", "qemu-system-x86"},
		{"apt-get", "apt"},
		{"apt-cache", "apt"},
		{"dpkg-deb", "dpkg"},
		{"xz", "xz-utils"},
	} {
		if _, err := exec.LookPath(tool.bin); err != nil {
			missing = append(missing, fmt.Sprintf("%s (package %s)", tool.bin, tool.pkg))
		}
	}
	if _, err := staticBusybox(); err != nil {
		missing = append(missing, "a static busybox (package busybox-static)")
	}
	if len(missing) > 0 {
		return unavailable("missing %s", strings.Join(missing, ", "))
	}
	return nil
}

// Skip ends the test with t.Skip when err matches ErrUnavailable (the
// message says what is missing) and with t.Fatal for any other error.
func Skip(t testing.TB, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if errors.Is(err, ErrUnavailable) {
		// make vmtest asked for the VM: say in make test's summary why
		// it did not run.
		clientsummary.Write(clientsummary.Skipped, "VM test "+t.Name(), err.Error())
		t.Skipf("skipping the VM test: %v", err)
	}
	t.Fatal(err)
}

// Require skips t unless VM tests are asked for (VKEY_VM=1, as make vmtest
// sets it) and the host has the tools they need (see Check).
func Require(t testing.TB) {
	t.Helper()
	if os.Getenv("VKEY_VM") != "1" {
		t.Skip("the VM tests run with VKEY_VM=1 (make vmtest)")
	}
	Skip(t, Check())
}

// TestKernel returns Debian's kernel from the module's build/vm cache (see
// Kernel and DefaultCacheDir), skipping t when it cannot be had here.
func TestKernel(t testing.TB, ctx context.Context) *KernelFiles {
	t.Helper()
	cache, err := DefaultCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	k, err := Kernel(ctx, cache)
	Skip(t, err)
	return k
}

// staticBusybox returns the path of busybox if it is statically linked
// (the guest has no libc for it).
func staticBusybox() (string, error) {
	path, err := exec.LookPath("busybox")
	if err != nil {
		return "", fmt.Errorf("busybox: %w", err)
	}
	if err := checkStatic(path); err != nil {
		return "", err
	}
	return path, nil
}

// checkStatic fails unless path is an ELF executable without an interpreter.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("inspect %s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked", path)
		}
	}
	return nil
}

// DefaultCacheDir returns build/vm under the root of the module containing
// the working directory (build/ is ignored by git).
func DefaultCacheDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("vmtest: working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "build", "vm"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("vmtest: no go.mod above the working directory")
		}
		dir = parent
	}
}
