package vmtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/vkey-dev/vkey/internal/procout"
)

// RunOptions configure one guest boot.
type RunOptions struct {
	// Kernel is the uncompressed kernel (KernelFiles.Vmlinux): microvm
	// cannot boot a bzImage.
	Kernel string
	// Initrd is the gzip cpio archive written by Initramfs.
	Initrd string
	// MemoryMB is the guest's memory (default 512).
	MemoryMB int
	// TPM attaches a swtpm software TPM 2.0 (tpm-tis): the guest gets
	// /dev/tpm0 and /dev/tpmrm0.
	TPM bool
	// Append is added to the kernel command line.
	Append string
	// Console, if set, receives the guest's console as it is produced.
	Console io.Writer
	// CPU replaces the CPU model (default "qemu64,+rdrand").
	CPU string
	// SMP is the number of virtual CPUs (default 1).
	SMP int
	// HostRoot shares the host's / read-only with the guest over
	// virtio-9p, mount tag "hostroot" (see HostRootInit).
	HostRoot bool
	// Share, if set, is a host folder the guest can read and write over
	// virtio-9p, mount tag "share" (HostRootInit mounts it at /vkeyshare).
	Share string
}

// Result is the outcome of a guest that ran its /init to the end.
type Result struct {
	// ExitCode is the status the guest's /init reported (see InitScript).
	ExitCode int
	// Console is everything the guest wrote to its serial console.
	Console string
	// Elapsed is the time from starting qemu until it exited.
	Elapsed time.Duration
}

// exitMarker is the line InitScript prints before it writes its status to
// the isa-debug-exit port.
var exitMarker = regexp.MustCompile(`(?m)^vmtest: exit (\d+)\r?$`)

// Run boots the guest with qemu's microvm machine under TCG (KVM does not
// work on the project's machines) and waits until it powers off, bounded by
// ctx. It returns the exit status the guest reported. If ctx ends first, or
// qemu fails, or the guest stops without reporting a status, the error
// says so and Result (when not nil) holds the console so far. Run kills only
// the qemu and swtpm processes it started.
func Run(ctx context.Context, opts RunOptions) (*Result, error) {
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		return nil, unavailable("qemu-system-x86_64 not found (install qemu-system-x86)")
	}
	if opts.MemoryMB == 0 {
		opts.MemoryMB = 512
	}
	if opts.CPU == "" {
		opts.CPU = "qemu64,+rdrand"
	}
	if opts.SMP == 0 {
		opts.SMP = 1
	}
	// A short directory: a unix socket path must stay under 108 bytes.
	work, err := os.MkdirTemp("", "vkvm")
	if err != nil {
		return nil, fmt.Errorf("vmtest: %w", err)
	}
	defer os.RemoveAll(work)

	cmdline := "console=ttyS0 quiet panic=-1"
	// On a busy host the kernel's fast TSC calibration against the PIT
	// fails under TCG; microvm has no HPET or ACPI PM timer to fall back on,
	// so the TSC is marked unusable and the boot hangs (seen about one boot
	// in eight under load). Tell the kernel the frequency instead: under
	// TCG the guest's RDTSC reads the host's counter.
	if khz := hostTSCkHz(); khz > 0 {
		cmdline += fmt.Sprintf(" tsc_early_khz=%d tsc=reliable", khz)
	}
	args := []string{
		"-machine", "microvm", "-accel", "tcg", "-cpu", opts.CPU,
		"-m", strconv.Itoa(opts.MemoryMB), "-smp", strconv.Itoa(opts.SMP),
		"-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio", "-no-reboot",
		"-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
		"-kernel", opts.Kernel, "-initrd", opts.Initrd,
	}
	if opts.TPM {
		stop, sock, err := startSwtpm(ctx, work)
		if err != nil {
			return nil, err
		}
		defer stop()
		args = append(args,
			"-chardev", "socket,id=chrtpm,path="+sock,
			"-tpmdev", "emulator,id=tpm0,chardev=chrtpm",
			"-device", "tpm-tis,tpmdev=tpm0")
		// microvm has no ACPI TPM table: probe tpm_tis by force, polling.
		cmdline += " tpm_tis.force=1 tpm_tis.interrupts=0"
	}
	if opts.HostRoot {
		args = append(args,
			"-fsdev", "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap",
			"-device", "virtio-9p-device,fsdev=hostroot,mount_tag=hostroot")
	}
	if opts.Share != "" {
		if strings.Contains(opts.Share, ",") {
			return nil, fmt.Errorf("vmtest: a shared folder's path cannot hold a comma: %s", opts.Share)
		}
		args = append(args,
			"-fsdev", "local,id=share,path="+opts.Share+",security_model=none,multidevs=remap",
			"-device", "virtio-9p-device,fsdev=share,mount_tag=share")
	}
	if opts.Append != "" {
		cmdline += " " + opts.Append
	}
	args = append(args, "-append", cmdline)

	var console procout.Buffer
	out := io.Writer(&console)
	if opts.Console != nil {
		out = io.MultiWriter(&console, opts.Console)
	}
	cmd := exec.CommandContext(ctx, qemu, args...)
	cmd.Stdin = nil // /dev/null
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 2 * time.Second
	start := time.Now()
	err = cmd.Run()
	res := &Result{Console: console.String(), Elapsed: time.Since(start)}

	if ctx.Err() != nil {
		return res, fmt.Errorf("vmtest: guest did not finish in time (%v): %w\n%s", res.Elapsed.Round(time.Millisecond), ctx.Err(), tail(res.Console))
	}
	status := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return res, fmt.Errorf("vmtest: qemu: %w", err)
		}
		status = ee.ExitCode()
	}
	m := exitMarker.FindAllStringSubmatch(res.Console, -1)
	if len(m) == 0 {
		return res, fmt.Errorf("vmtest: qemu exited with status %d and the guest reported no exit code:\n%s", status, tail(res.Console))
	}
	code, _ := strconv.Atoi(m[len(m)-1][1])
	res.ExitCode = code
	// isa-debug-exit makes qemu exit with (N<<1)|1; a plain poweroff gives 0.
	if status != (code&0xff)<<1|1 && status != 0 {
		return res, fmt.Errorf("vmtest: guest reported exit %d but qemu exited with status %d:\n%s", code, status, tail(res.Console))
	}
	return res, nil
}

// startSwtpm starts a TPM 2.0 emulator serving a unix socket in dir and
// returns a function that stops it.
func startSwtpm(ctx context.Context, dir string) (func(), string, error) {
	swtpm, err := exec.LookPath("swtpm")
	if err != nil {
		return nil, "", unavailable("swtpm not found (install swtpm and swtpm-tools)")
	}
	state := filepath.Join(dir, "tpm")
	if err := os.Mkdir(state, 0o700); err != nil {
		return nil, "", fmt.Errorf("vmtest: %w", err)
	}
	sock := filepath.Join(dir, "tpm.sock")
	var logs bytes.Buffer
	cmd := exec.Command(swtpm, "socket", "--tpm2",
		"--tpmstate", "dir="+state,
		"--ctrl", "type=unixio,path="+sock,
		"--terminate", "--flags", "not-need-init,startup-clear")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("vmtest: start swtpm: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() {
		select {
		case <-exited:
			return
		default:
		}
		_ = cmd.Process.Kill() // only the swtpm this call started
		<-exited
	}
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
	for {
		if _, err := os.Stat(sock); err == nil {
			return stop, sock, nil
		}
		select {
		case <-exited:
			return nil, "", fmt.Errorf("vmtest: swtpm exited: %s", bytes.TrimSpace(logs.Bytes()))
		case <-ctx.Done():
			stop()
			return nil, "", fmt.Errorf("vmtest: waiting for swtpm: %w", ctx.Err())
		case <-deadline.C:
			stop()
			return nil, "", errors.New("vmtest: swtpm did not create its socket within 5s")
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// tail returns the last lines of a console log for error messages.
func tail(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > 40 {
		lines = append([]string{"..."}, lines[len(lines)-40:]...)
	}
	return strings.Join(lines, "\n")
}
