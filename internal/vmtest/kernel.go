package vmtest

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// KernelFiles are the parts of Debian's kernel package the guest needs.
type KernelFiles struct {
	// Package is the Debian package, e.g. linux-image-6.1.0-48-amd64.
	Package string
	// Release is the kernel release, e.g. 6.1.0-48-amd64.
	Release string
	// Vmlinuz is the compressed kernel as shipped (bzImage), for the pc machine.
	Vmlinuz string
	// Vmlinux is the uncompressed ELF kernel, which microvm needs.
	Vmlinux string
	// Modules are hid.ko, hid-generic.ko and uhid.ko, in the order to load them.
	Modules []string
	// HostRootModules are the modules a guest that mounts the host's root
	// over 9p with a writable overlay needs (see HostRootInit), in load order.
	HostRootModules []string
}

// guestModules are the modules the guest loads, in load order: hidraw is
// inside hid.ko; without hid-generic no driver binds and no hidraw node
// appears.
var guestModules = []string{"hid.ko", "hid-generic.ko", "uhid.ko"}

// hostRootModules are virtio-mmio, 9p over virtio and overlayfs, in load
// order: what a guest needs to run the host's own programs (browsers) from
// its root filesystem shared read-only (../shared/vm/browsers.md).
var hostRootModules = []string{"virtio_ring.ko", "virtio.ko", "virtio_mmio.ko", "9pnet.ko",
	"9pnet_virtio.ko", "netfs.ko", "fscache.ko", "9p.ko", "overlay.ko"}

// Kernel returns Debian's current amd64 kernel, unpacked into cacheDir. The
// package is the one linux-image-amd64 depends on (apt-cache depends), fetched
// with apt-get download and never installed; later calls reuse the cache.
// Concurrent callers (several test processes) are serialised by a lock file.
func Kernel(ctx context.Context, cacheDir string) (*KernelFiles, error) {
	pkg, err := kernelPackage(ctx)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(cacheDir, pkg)
	if k, err := loadKernel(dir, pkg); err == nil {
		return k, nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("vmtest: kernel cache: %w", err)
	}
	unlock, err := lockFile(ctx, filepath.Join(cacheDir, ".lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()
	if k, err := loadKernel(dir, pkg); err == nil {
		return k, nil // another process fetched it while we waited
	}
	if err := fetchKernel(ctx, cacheDir, pkg, dir); err != nil {
		return nil, err
	}
	return loadKernel(dir, pkg)
}

// kernelPackage asks apt which versioned image linux-image-amd64 depends on.
func kernelPackage(ctx context.Context) (string, error) {
	if _, err := exec.LookPath("apt-cache"); err != nil {
		return "", unavailable("apt-cache not found: the guest kernel comes from Debian's linux-image-amd64")
	}
	out, err := exec.CommandContext(ctx, "apt-cache", "depends", "linux-image-amd64").Output()
	if err != nil {
		return "", unavailable("apt-cache depends linux-image-amd64: %v", err)
	}
	pkg := parseKernelDepends(out)
	if pkg == "" {
		return "", unavailable("apt-cache depends linux-image-amd64 names no linux-image-<version> package (run apt-get update)")
	}
	return pkg, nil
}

// parseKernelDepends returns the first "Depends: linux-image-<digit>..." package.
func parseKernelDepends(out []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "Depends:" && strings.HasPrefix(f[1], "linux-image-") {
			rest := strings.TrimPrefix(f[1], "linux-image-")
			if rest != "" && rest[0] >= '0' && rest[0] <= '9' {
				return f[1]
			}
		}
	}
	return ""
}

// loadKernel returns the cached kernel in dir if it is complete.
func loadKernel(dir, pkg string) (*KernelFiles, error) {
	release, err := os.ReadFile(filepath.Join(dir, "release"))
	if err != nil {
		return nil, fmt.Errorf("vmtest: no cached kernel: %w", err)
	}
	k := &KernelFiles{
		Package: pkg,
		Release: strings.TrimSpace(string(release)),
		Vmlinuz: filepath.Join(dir, "vmlinuz"),
		Vmlinux: filepath.Join(dir, "vmlinux"),
	}
	for _, m := range guestModules {
		k.Modules = append(k.Modules, filepath.Join(dir, m))
	}
	for _, m := range hostRootModules {
		k.HostRootModules = append(k.HostRootModules, filepath.Join(dir, m))
	}
	for _, f := range append(append([]string{k.Vmlinuz, k.Vmlinux}, k.Modules...), k.HostRootModules...) {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("vmtest: cached kernel incomplete: %w", err)
		}
	}
	return k, nil
}

// lockFile takes an exclusive flock on path, waiting until ctx is done.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("vmtest: lock: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			_ = f.Close()
			return nil, fmt.Errorf("vmtest: lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("vmtest: waiting for %s: %w", path, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// fetchKernel downloads pkg and unpacks what the guest needs into dir.
func fetchKernel(ctx context.Context, cacheDir, pkg, dir string) error {
	for _, tool := range []string{"apt-get", "dpkg-deb", "xz"} {
		if _, err := exec.LookPath(tool); err != nil {
			return unavailable("%s not found", tool)
		}
	}
	tmp, err := os.MkdirTemp(cacheDir, "fetch-")
	if err != nil {
		return fmt.Errorf("vmtest: %w", err)
	}
	defer os.RemoveAll(tmp)

	dl := exec.CommandContext(ctx, "apt-get", "download", "-q", pkg)
	dl.Dir = tmp
	if out, err := dl.CombinedOutput(); err != nil {
		return unavailable("apt-get download %s: %v: %s", pkg, err, bytes.TrimSpace(out))
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, pkg+"_*.deb"))
	if len(debs) != 1 {
		return fmt.Errorf("vmtest: apt-get download %s left %d .deb files", pkg, len(debs))
	}
	out := filepath.Join(tmp, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		return fmt.Errorf("vmtest: %w", err)
	}
	release, err := unpackDeb(ctx, debs[0], out)
	if err != nil {
		return err
	}
	if err := extractVmlinux(ctx, filepath.Join(out, "vmlinuz"), filepath.Join(out, "vmlinux")); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "release"), []byte(release+"\n"), 0o644); err != nil {
		return fmt.Errorf("vmtest: %w", err)
	}
	_ = os.RemoveAll(dir)
	if err := os.Rename(out, dir); err != nil {
		return fmt.Errorf("vmtest: %w", err)
	}
	// Debian replaced the kernel: drop the ones it superseded (~75 MB each).
	old, _ := filepath.Glob(filepath.Join(cacheDir, "linux-image-*"))
	for _, o := range old {
		if o != dir {
			_ = os.RemoveAll(o)
		}
	}
	return nil
}

// unpackDeb streams the package's data archive (dpkg-deb --fsys-tarfile)
// and writes vmlinuz and the guest modules flat into out. It returns the
// kernel release.
func unpackDeb(ctx context.Context, deb, out string) (string, error) {
	cmd := exec.CommandContext(ctx, "dpkg-deb", "--fsys-tarfile", deb)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return "", fmt.Errorf("vmtest: dpkg-deb: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("vmtest: dpkg-deb: %w", err)
	}
	release, found, terr := extractKernelTar(ctx, pipe, out)
	_, _ = io.Copy(io.Discard, pipe)
	if err := cmd.Wait(); err != nil {
		return "", fmt.Errorf("vmtest: dpkg-deb --fsys-tarfile %s: %w: %s", deb, err, bytes.TrimSpace(stderr.Bytes()))
	}
	if terr != nil {
		return "", terr
	}
	for _, want := range append(append([]string{"vmlinuz"}, guestModules...), hostRootModules...) {
		if !found[want] {
			return "", fmt.Errorf("vmtest: %s has no %s", filepath.Base(deb), want)
		}
	}
	return release, nil
}

// extractKernelTar copies ./boot/vmlinuz-* and the guest and host-root
// modules (plain or .ko.xz) from a kernel package's data tar into out.
func extractKernelTar(ctx context.Context, r io.Reader, out string) (string, map[string]bool, error) {
	found := map[string]bool{}
	release := ""
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return release, found, nil
		}
		if err != nil {
			return "", nil, fmt.Errorf("vmtest: reading kernel package: %w", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		dest := ""
		compressed := false
		switch {
		case strings.HasPrefix(name, "boot/vmlinuz-"):
			dest = "vmlinuz"
			release = strings.TrimPrefix(name, "boot/vmlinuz-")
		case strings.Contains(name, "/kernel/drivers/hid/"):
			base := path.Base(name)
			if strings.HasSuffix(base, ".xz") {
				base, compressed = strings.TrimSuffix(base, ".xz"), true
			}
			for _, m := range guestModules {
				if base == m && strings.HasSuffix(path.Dir(name), "/kernel/drivers/hid") {
					dest = m
				}
			}
		case strings.Contains(name, "/kernel/"):
			base := path.Base(name)
			if strings.HasSuffix(base, ".xz") {
				base, compressed = strings.TrimSuffix(base, ".xz"), true
			}
			for _, m := range hostRootModules {
				if base == m {
					dest = m
				}
			}
		}
		if dest == "" {
			continue
		}
		if err := writeFrom(ctx, filepath.Join(out, dest), tr, compressed); err != nil {
			return "", nil, err
		}
		found[dest] = true
	}
}

// writeFrom writes r (xz-decompressed if compressed) to path.
func writeFrom(ctx context.Context, dest string, r io.Reader, compressed bool) error {
	f, err := os.Create(dest)
	if err != nil {
		return fmt.Errorf("vmtest: %w", err)
	}
	if compressed {
		cmd := exec.CommandContext(ctx, "xz", "-dc")
		cmd.Stdin, cmd.Stdout = r, f
		err = cmd.Run()
	} else {
		_, err = io.Copy(f, r)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("vmtest: write %s: %w", dest, err)
	}
	return nil
}

// xzMagic starts an XZ stream (xz file format, section 2.1.1.1).
var xzMagic = []byte{0xFD, '7', 'z', 'X', 'Z', 0x00}

// extractVmlinux writes the ELF kernel embedded in a bzImage: the XZ stream
// that starts at the first XZ magic, decompressed with xz --single-stream
// (which ignores the bytes after the stream).
func extractVmlinux(ctx context.Context, vmlinuz, vmlinux string) error {
	data, err := os.ReadFile(vmlinuz)
	if err != nil {
		return fmt.Errorf("vmtest: %w", err)
	}
	i := bytes.Index(data, xzMagic)
	if i < 0 {
		return fmt.Errorf("vmtest: %s holds no XZ stream (not an XZ-compressed kernel)", vmlinuz)
	}
	f, err := os.Create(vmlinux)
	if err != nil {
		return fmt.Errorf("vmtest: %w", err)
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "xz", "-dc", "--single-stream")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(data[i:]), f, &stderr
	err = cmd.Run()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("vmtest: decompress kernel: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	if err := checkELF(vmlinux); err != nil {
		return err
	}
	return nil
}

// checkELF fails unless path starts with the ELF magic.
func checkELF(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("vmtest: %w", err)
	}
	defer f.Close()
	magic := make([]byte, 4)
	if _, err := io.ReadFull(f, magic); err != nil || !bytes.Equal(magic, []byte("\x7fELF")) {
		return fmt.Errorf("vmtest: %s is not an ELF file", path)
	}
	return nil
}
