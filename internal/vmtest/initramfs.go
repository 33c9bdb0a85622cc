package vmtest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// InitramfsSpec lists what goes into the guest's initramfs besides busybox
// (installed as /bin/busybox with a symlink per applet, /bin/sh included)
// and the directories /dev /proc /sys /tmp with /dev/console and /dev/null.
type InitramfsSpec struct {
	// Init is the text of /init, run by the kernel as PID 1 (a busybox sh
	// script). InitScript writes the usual one.
	Init string
	// Modules are kernel modules, copied to /lib/modules/<base name>.
	Modules []string
	// Binaries maps a guest path to a host file copied as it is: static
	// binaries such as a CGO_ENABLED=0 Go program (mode 0755).
	Binaries map[string]string
	// Tools are dynamically linked host programs (fido2-token, ...),
	// copied to /bin/<base name> together with the libraries ldd lists,
	// at the same paths as on the host.
	Tools []string
	// Files maps a guest path to file contents (mode 0644).
	Files map[string][]byte
}

// InitScript returns an /init that mounts proc, sysfs and devtmpfs, loads
// modules (guest paths, in order), runs body with sh -e semantics off, and
// reports body's exit status: it prints "vmtest: exit N" (which Run looks
// for) and writes N to the isa-debug-exit port so that qemu exits with
// (N<<1)|1. body runs in a subshell; its output goes to the console.
func InitScript(body string, modules ...string) string {
	var b strings.Builder
	b.WriteString("#!/bin/sh\n")
	b.WriteString("mount -t proc proc /proc\nmount -t sysfs sysfs /sys\nmount -t devtmpfs devtmpfs /dev\n")
	b.WriteString("mkdir -p /dev/pts /tmp /run\nexport PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root\n")
	for _, m := range modules {
		fmt.Fprintf(&b, "insmod %s || echo 'vmtest: insmod %s failed'\n", m, m)
	}
	b.WriteString("(\n")
	b.WriteString(body)
	b.WriteString("\n)\nrc=$?\n")
	b.WriteString("echo \"vmtest: exit $rc\"\n")
	b.WriteString("printf \"\\\\$(printf %o $rc)\" | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null\n")
	b.WriteString("poweroff -f\n")
	return b.String()
}

// cpio mode bits (newc stores st_mode).
const (
	modeDir     = 0o040000
	modeReg     = 0o100000
	modeSymlink = 0o120000
	modeChar    = 0o020000
)

// cpioEntry is one file of the archive.
type cpioEntry struct {
	mode         uint32
	data         []byte // contents, or a symlink's target
	src          string // host file to copy instead of data
	rmajor, rmin uint32 // device numbers of a character device
}

// archive collects entries by guest path.
type archive map[string]*cpioEntry

// add records an entry and the directories above it.
func (a archive) add(guestPath string, e *cpioEntry) {
	p := strings.TrimPrefix(path.Clean("/"+guestPath), "/")
	a[p] = e
	for d := path.Dir(p); d != "." && d != "/"; d = path.Dir(d) {
		if _, ok := a[d]; !ok {
			a[d] = &cpioEntry{mode: modeDir | 0o755}
		}
	}
}

// Initramfs writes a gzip-compressed newc cpio archive to out with busybox,
// the modules, binaries, tools (and their libraries), files and /init of spec.
func Initramfs(ctx context.Context, out string, spec InitramfsSpec) error {
	a := archive{}
	for _, d := range []string{"dev", "proc", "sys", "tmp", "run", "root", "bin", "sbin", "usr/bin", "usr/sbin"} {
		a.add(d, &cpioEntry{mode: modeDir | 0o755})
	}
	a["tmp"].mode = modeDir | 0o1777
	// The kernel opens /dev/console for init's stdio before devtmpfs is mounted.
	a.add("dev/console", &cpioEntry{mode: modeChar | 0o600, rmajor: 5, rmin: 1})
	a.add("dev/null", &cpioEntry{mode: modeChar | 0o666, rmajor: 1, rmin: 3})

	bb, err := staticBusybox()
	if err != nil {
		return unavailable("%v (install busybox-static)", err)
	}
	applets, err := busyboxApplets(ctx, bb)
	if err != nil {
		return err
	}
	for _, ap := range applets {
		a.add(ap, &cpioEntry{mode: modeSymlink | 0o777, data: []byte("/bin/busybox")})
	}
	a.add("bin/busybox", &cpioEntry{mode: modeReg | 0o755, src: bb})

	for _, m := range spec.Modules {
		a.add("lib/modules/"+filepath.Base(m), &cpioEntry{mode: modeReg | 0o644, src: m})
	}
	for guest, host := range spec.Binaries {
		a.add(guest, &cpioEntry{mode: modeReg | 0o755, src: host})
	}
	for _, tool := range spec.Tools {
		libs, err := sharedLibraries(ctx, tool)
		if err != nil {
			return err
		}
		a.add("bin/"+filepath.Base(tool), &cpioEntry{mode: modeReg | 0o755, src: tool})
		for _, lib := range libs {
			a.add(lib, &cpioEntry{mode: modeReg | 0o755, src: lib})
		}
	}
	for guest, data := range spec.Files {
		a.add(guest, &cpioEntry{mode: modeReg | 0o644, data: data})
	}
	if spec.Init != "" {
		a.add("init", &cpioEntry{mode: modeReg | 0o755, data: []byte(spec.Init)})
	}

	tmp := out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("vmtest: %w", err)
	}
	defer os.Remove(tmp)
	bw := bufio.NewWriterSize(f, 1<<20)
	zw, err := gzip.NewWriterLevel(bw, gzip.BestSpeed)
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("vmtest: %w", err)
	}
	err = a.write(zw)
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("vmtest: write initramfs: %w", err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return fmt.Errorf("vmtest: %w", err)
	}
	return nil
}

// write emits the archive in newc format, parents before children.
func (a archive) write(w io.Writer) error {
	names := make([]string, 0, len(a))
	for n := range a {
		names = append(names, n)
	}
	sort.Strings(names) // "a" sorts before "a/b"
	cw := &cpioWriter{w: w}
	for _, n := range names {
		e := a[n]
		data := e.data
		if e.src != "" {
			var err error
			if data, err = os.ReadFile(e.src); err != nil {
				return fmt.Errorf("read %s: %w", e.src, err)
			}
		}
		if err := cw.entry(n, e.mode, data, e.rmajor, e.rmin); err != nil {
			return err
		}
	}
	return cw.entry("TRAILER!!!", 0, nil, 0, 0)
}

// cpioWriter writes the "new ASCII" (newc) cpio format: a 110-byte header
// of "070701" and 13 eight-digit hex fields, the NUL-terminated name padded
// to a multiple of 4 bytes, and the data padded likewise.
type cpioWriter struct {
	w   io.Writer
	ino uint32
	off int64
}

func (c *cpioWriter) entry(name string, mode uint32, data []byte, rmajor, rminor uint32) error {
	c.ino++
	nlink := uint32(1)
	if mode&0o170000 == modeDir {
		nlink = 2
	}
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rmajor, rminor, len(name)+1, 0)
	if err := c.put([]byte(hdr)); err != nil {
		return err
	}
	if err := c.put(append([]byte(name), 0)); err != nil {
		return err
	}
	if err := c.pad(); err != nil {
		return err
	}
	if err := c.put(data); err != nil {
		return err
	}
	return c.pad()
}

func (c *cpioWriter) put(b []byte) error {
	n, err := c.w.Write(b)
	c.off += int64(n)
	return err
}

func (c *cpioWriter) pad() error {
	if r := c.off % 4; r != 0 {
		return c.put(make([]byte, 4-r))
	}
	return nil
}

// busyboxApplets lists the applets of bb as guest paths (bin/sh, ...).
func busyboxApplets(ctx context.Context, bb string) ([]string, error) {
	out, err := exec.CommandContext(ctx, bb, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("vmtest: %s --list-full: %w", bb, err)
	}
	var applets []string
	for _, l := range strings.Fields(string(out)) {
		if l != "" && !strings.Contains(l, "..") {
			applets = append(applets, l)
		}
	}
	if len(applets) == 0 {
		return nil, fmt.Errorf("vmtest: %s lists no applets", bb)
	}
	return applets, nil
}

// sharedLibraries returns the absolute paths of the libraries ldd lists for
// prog, the dynamic loader included.
func sharedLibraries(ctx context.Context, prog string) ([]string, error) {
	out, err := exec.CommandContext(ctx, "ldd", prog).Output()
	if err != nil {
		return nil, fmt.Errorf("vmtest: ldd %s: %w", prog, err)
	}
	return parseLdd(out)
}

// parseLdd reads ldd's output: "libx.so.1 => /path/libx.so.1 (0x...)" and
// "/lib64/ld-linux-x86-64.so.2 (0x...)"; the vdso has no file.
func parseLdd(out []byte) ([]string, error) {
	var libs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.Contains(line, "statically linked") {
			continue
		}
		target := line
		if _, after, ok := strings.Cut(line, "=>"); ok {
			target = strings.TrimSpace(after)
			if strings.HasPrefix(target, "not found") {
				return nil, fmt.Errorf("vmtest: ldd: %s", line)
			}
		}
		if i := strings.Index(target, " ("); i >= 0 {
			target = target[:i]
		}
		if strings.HasPrefix(target, "/") {
			libs = append(libs, target)
		}
	}
	return libs, nil
}
