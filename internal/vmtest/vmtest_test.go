package vmtest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestParseKernelDepends(t *testing.T) {
	out := []byte(`linux-image-amd64
  Depends: linux-image-6.1.0-48-amd64
  Depends: linux-image-6.1.0-99-amd64
`)
	if got := parseKernelDepends(out); got != "linux-image-6.1.0-48-amd64" {
		t.Errorf("got %q", got)
	}
	if got := parseKernelDepends([]byte("linux-image-amd64\n  Depends: linux-image-cloud\n")); got != "" {
		t.Errorf("non-versioned dependency accepted: %q", got)
	}
}

func TestParseLdd(t *testing.T) {
	out := []byte(`	linux-vdso.so.1 (0x00007ffd)
	libfido2.so.1 => /lib/x86_64-linux-gnu/libfido2.so.1 (0x00007f)
	libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)
	/lib64/ld-linux-x86-64.so.2 (0x00007f)
`)
	libs, err := parseLdd(out)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/lib/x86_64-linux-gnu/libfido2.so.1", "/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"}
	if strings.Join(libs, ",") != strings.Join(want, ",") {
		t.Errorf("got %q, want %q", libs, want)
	}
	if _, err := parseLdd([]byte("\tlibmissing.so => not found\n")); err == nil {
		t.Error("a missing library was not reported")
	}
}

// readNewc parses a newc archive into name → (mode, data).
func readNewc(t *testing.T, r io.Reader) map[string]cpioEntry {
	t.Helper()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	entries := map[string]cpioEntry{}
	off := 0
	field := func(i int) uint32 {
		v, err := strconv.ParseUint(string(data[off+6+8*i:off+14+8*i]), 16, 32)
		if err != nil {
			t.Fatalf("header field %d at %d: %v", i, off, err)
		}
		return uint32(v)
	}
	align := func(n int) int { return (n + 3) &^ 3 }
	for {
		if off+110 > len(data) || string(data[off:off+6]) != "070701" {
			t.Fatalf("bad header at %d", off)
		}
		mode, size, rmaj, rmin, nameSize := field(1), int(field(6)), field(9), field(10), int(field(11))
		name := string(data[off+110 : off+110+nameSize-1])
		if data[off+110+nameSize-1] != 0 {
			t.Fatalf("name %q not NUL-terminated", name)
		}
		dataOff := align(off + 110 + nameSize)
		if name == "TRAILER!!!" {
			return entries
		}
		entries[name] = cpioEntry{mode: mode, data: data[dataOff : dataOff+size], rmajor: rmaj, rmin: rmin}
		off = align(dataOff + size)
	}
}

func TestCpioNewc(t *testing.T) {
	a := archive{}
	a.add("/bin/tool", &cpioEntry{mode: modeReg | 0o755, data: []byte("abcde")})
	a.add("etc/x", &cpioEntry{mode: modeReg | 0o644, data: []byte("1234")})
	a.add("bin/sh", &cpioEntry{mode: modeSymlink | 0o777, data: []byte("/bin/busybox")})
	a.add("dev/console", &cpioEntry{mode: modeChar | 0o600, rmajor: 5, rmin: 1})
	var buf bytes.Buffer
	if err := a.write(&buf); err != nil {
		t.Fatal(err)
	}
	if buf.Len()%4 != 0 {
		t.Errorf("archive length %d is not a multiple of 4", buf.Len())
	}
	got := readNewc(t, bytes.NewReader(buf.Bytes()))
	if e := got["bin/tool"]; e.mode != modeReg|0o755 || string(e.data) != "abcde" {
		t.Errorf("bin/tool: %o %q", e.mode, e.data)
	}
	if e := got["bin/sh"]; e.mode != modeSymlink|0o777 || string(e.data) != "/bin/busybox" {
		t.Errorf("bin/sh: %o %q", e.mode, e.data)
	}
	if e := got["dev/console"]; e.mode != modeChar|0o600 || e.rmajor != 5 || e.rmin != 1 {
		t.Errorf("dev/console: %+v", e)
	}
	for _, d := range []string{"bin", "etc", "dev"} {
		if got[d].mode != modeDir|0o755 {
			t.Errorf("parent directory %s missing", d)
		}
	}
	// The system's cpio must read it too.
	if _, err := exec.LookPath("cpio"); err == nil {
		cmd := exec.Command("cpio", "-t", "--quiet")
		cmd.Stdin = bytes.NewReader(buf.Bytes())
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("cpio -t: %v", err)
		}
		if !strings.Contains(string(out), "bin/tool\n") || !strings.Contains(string(out), "dev/console\n") {
			t.Errorf("cpio -t lists:\n%s", out)
		}
	}
}

func TestInitramfs(t *testing.T) {
	if _, err := staticBusybox(); err != nil {
		t.Skipf("skipping: no static busybox (install busybox-static): %v", err)
	}
	dir := t.TempDir()
	mod := filepath.Join(dir, "uhid.ko")
	if err := os.WriteFile(mod, []byte("module"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := InitramfsSpec{
		Init:     InitScript("true", "/lib/modules/uhid.ko"),
		Modules:  []string{mod},
		Binaries: map[string]string{"bin/prog": mod},
		Files:    map[string][]byte{"etc/cred_param": []byte("x\n")},
	}
	if ls, err := exec.LookPath("ls"); err == nil {
		if _, err := exec.LookPath("ldd"); err == nil {
			spec.Tools = []string{ls}
		}
	}
	out := filepath.Join(dir, "initramfs.cpio.gz")
	if err := Initramfs(context.Background(), out, spec); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	got := readNewc(t, zr)
	for _, want := range []string{"init", "bin/busybox", "bin/sh", "lib/modules/uhid.ko", "bin/prog", "etc/cred_param", "dev/console", "proc", "sys"} {
		if _, ok := got[want]; !ok {
			t.Errorf("initramfs lacks %s", want)
		}
	}
	if spec.Tools != nil {
		if _, ok := got["bin/ls"]; !ok {
			t.Error("initramfs lacks the tool")
		}
		found := false
		for name := range got {
			found = found || strings.Contains(name, "ld-linux")
		}
		if !found {
			t.Error("initramfs lacks the dynamic loader of the tool")
		}
	}
	if got["init"].mode&0o111 == 0 {
		t.Error("/init is not executable")
	}
}

func TestInitScriptReportsStatus(t *testing.T) {
	s := InitScript("exit 3", "/lib/modules/hid.ko", "/lib/modules/uhid.ko")
	if !strings.HasPrefix(s, "#!/bin/sh\n") {
		t.Error("no shebang")
	}
	if strings.Index(s, "hid.ko") > strings.Index(s, "uhid.ko") {
		t.Error("modules not loaded in the given order")
	}
	for _, want := range []string{"mount -t devtmpfs", "of=/dev/port", "seek=244", "poweroff -f"} {
		if !strings.Contains(s, want) {
			t.Errorf("init script lacks %q", want)
		}
	}
	// Run the script's reporting tail with the host's sh, /dev/port replaced.
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	body := s[strings.Index(s, "(\n"):strings.Index(s, "poweroff")]
	port := filepath.Join(t.TempDir(), "port")
	if err := os.WriteFile(port, make([]byte, 256), 0o644); err != nil {
		t.Fatal(err)
	}
	body = strings.ReplaceAll(body, "/dev/port", port)
	body = strings.ReplaceAll(body, "dd of=", "dd conv=notrunc of=")
	out, err := exec.Command(sh, "-c", body).CombinedOutput()
	if err != nil {
		t.Fatalf("sh: %v: %s", err, out)
	}
	if m := exitMarker.FindStringSubmatch(string(out)); m == nil || m[1] != "3" {
		t.Errorf("marker missing in %q", out)
	}
	b, _ := os.ReadFile(port)
	if b[0xf4] != 3 {
		t.Errorf("byte at 0xf4 is %d, want 3", b[0xf4])
	}
}

func TestExtractKernel(t *testing.T) {
	if _, err := exec.LookPath("xz"); err != nil {
		t.Skip("skipping: xz not found (install xz-utils)")
	}
	dir := t.TempDir()
	// A fake bzImage: a setup header, an XZ stream holding an "ELF", trailing bytes.
	elfData := append([]byte("\x7fELF"), bytes.Repeat([]byte("kernel"), 1000)...)
	cmd := exec.Command("xz", "-c", "--check=crc32")
	cmd.Stdin = bytes.NewReader(elfData)
	stream, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	bz := append(append([]byte("MZ setup code \xfd7zX"), stream...), []byte("trailer!")...)

	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	addFile := func(name string, data []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	addFile("./boot/vmlinuz-6.1.0-99-amd64", bz)
	addFile("./boot/System.map-6.1.0-99-amd64", []byte("map"))
	addFile("./lib/modules/6.1.0-99-amd64/kernel/drivers/hid/hid.ko", []byte("hid"))
	addFile("./lib/modules/6.1.0-99-amd64/kernel/drivers/hid/hid-generic.ko", []byte("generic"))
	addFile("./lib/modules/6.1.0-99-amd64/kernel/drivers/hid/usbhid/usbhid.ko", []byte("usb"))
	addFile("./lib/modules/6.1.0-99-amd64/kernel/fs/overlayfs/overlay.ko", []byte("overlay"))
	xzMod := exec.Command("xz", "-c", "--check=crc32")
	xzMod.Stdin = strings.NewReader("uhid module")
	compressed, err := xzMod.Output()
	if err != nil {
		t.Fatal(err)
	}
	addFile("./lib/modules/6.1.0-99-amd64/kernel/drivers/hid/uhid.ko.xz", compressed)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}

	release, found, err := extractKernelTar(context.Background(), &tarBuf, dir)
	if err != nil {
		t.Fatal(err)
	}
	if release != "6.1.0-99-amd64" {
		t.Errorf("release %q", release)
	}
	for _, m := range append([]string{"vmlinuz"}, guestModules...) {
		if !found[m] {
			t.Errorf("%s not extracted", m)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "uhid.ko")); string(b) != "uhid module" {
		t.Errorf("uhid.ko.xz decompressed to %q", b)
	}
	if !found["overlay.ko"] {
		t.Error("the host-root module overlay.ko was not extracted")
	}
	if _, err := os.Stat(filepath.Join(dir, "usbhid.ko")); err == nil {
		t.Error("extracted a module the guest does not load")
	}

	if err := extractVmlinux(context.Background(), filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "vmlinux")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "vmlinux")); !bytes.Equal(b, elfData) {
		t.Errorf("vmlinux is %d bytes, want %d", len(b), len(elfData))
	}
	if err := os.WriteFile(filepath.Join(dir, "plain"), []byte("no stream here"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := extractVmlinux(context.Background(), filepath.Join(dir, "plain"), filepath.Join(dir, "out")); err == nil {
		t.Error("a kernel without an XZ stream was accepted")
	}
}

func TestSkipClassifiesErrors(t *testing.T) {
	err := unavailable("missing %s", "qemu")
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "missing qemu") {
		t.Errorf("unavailable: %v", err)
	}
	if errors.Is(fmt.Errorf("other"), ErrUnavailable) {
		t.Error("plain errors match ErrUnavailable")
	}
}

func TestDefaultCacheDir(t *testing.T) {
	dir, err := DefaultCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(filepath.Dir(dir)), "go.mod")); err != nil || filepath.Base(dir) != "vm" {
		t.Errorf("cache dir %s is not build/vm under the module root", dir)
	}
}
