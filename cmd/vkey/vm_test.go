package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vkey-dev/vkey/internal/clientsummary"
	"github.com/vkey-dev/vkey/internal/keyproc"
	"github.com/vkey-dev/vkey/internal/vmtest"
)

// The VM tests prove the kernel path: in a qemu guest running Debian's own
// kernel (internal/vmtest), the static vkey binary creates its device
// through /dev/uhid, the kernel makes it /dev/hidraw0, and libfido2's
// unmodified tools enumerate it and complete a registration and an
// assertion through it. They run only with VKEY_VM=1 (make vmtest).

// vmBinary builds vkey with CGO_ENABLED=0: the guest has no libc for it.
func vmBinary(t *testing.T) string {
	t.Helper()
	return keyproc.Binary(t)
}

// vmScript is the guest's test, run by /init after hid, hid-generic and uhid
// are loaded. It starts `vkey run VKEY_ARGS` on uhid, then drives libfido2's
// tools through /dev/hidraw0; every step that fails exits with its own code
// and says which step it was.
const vmScript = `
set -o pipefail
cd /tmp
fail() { echo "vmtest: step failed: $2"; echo "--- vkey stderr:"; cat /tmp/vkey.err; exit $1; }
# startkey starts vkey on uhid and waits until it is ready.
startkey() {
	rm -f /tmp/ready
	vkey run --transport uhid --presence auto --ephemeral --ready-file /tmp/ready VKEY_ARGS >/tmp/vkey.out 2>>/tmp/vkey.err &
	pid=$!
	i=0
	while [ ! -s /tmp/ready ] && [ $i -lt 300 ]; do
		kill -0 $pid 2>/dev/null || fail 10 "vkey run exited"
		sleep 0.05; i=$((i+1))
	done
	dev=$(cat /tmp/ready)
	[ -c "$dev" ] || fail 11 "vkey's hidraw node ($dev) exists"
}
# now prints the time since boot in milliseconds (/proc/uptime: 10 ms steps).
now() { read up _ < /proc/uptime; echo $(( ${up%.*} * 1000 + 1${up#*.} * 10 - 1000 )); }
# stopkey sends SIGTERM to vkey, waits for it to exit and checks that it
# took less than STOP_BOUND_MS and that the hidraw node is gone. $1 names
# the case in the message.
stopkey() {
	t0=$(now)
	kill $pid
	wait $pid
	ms=$(( $(now) - t0 ))
	echo "vmtest: stop time ($1): ${ms} ms"
	[ $ms -lt STOP_BOUND_MS ] || fail 22 "vkey stops within STOP_BOUND_MS ms of SIGTERM ($1): took ${ms} ms"
	i=0
	while [ -e "$dev" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
	[ ! -e "$dev" ] || fail 18 "the device is destroyed when vkey stops ($1)"
}
startkey
cat /tmp/vkey.out
[ -c /dev/hidraw0 ] || fail 11 "/dev/hidraw0 exists"
grep -q '^/dev/hidraw0$' /tmp/ready || fail 12 "vkey reports /dev/hidraw0 (it said: $(cat /tmp/ready))"

timeout 20 fido2-token -L > /tmp/list || fail 13 "fido2-token -L"
cat /tmp/list
grep -q '^/dev/hidraw0: vendor=0x1209, product=0x7679' /tmp/list || fail 14 "fido2-token -L lists /dev/hidraw0"
timeout 20 fido2-token -I /dev/hidraw0 || fail 15 "fido2-token -I /dev/hidraw0"

timeout 30 fido2-cred -M -q -i /etc/vkey/cred_param /dev/hidraw0 es256 |
	timeout 10 fido2-cred -V -o /tmp/cred es256 || fail 16 "fido2-cred -M | fido2-cred -V"
echo "vmtest: registered credential $(head -n 1 /tmp/cred)"

sed -n 1p /tmp/cred > /tmp/credid
sed 1d /tmp/cred > /tmp/pub.pem
{ cat /etc/vkey/assert_cdh; echo example.org; cat /tmp/credid; } > /tmp/assert_param
timeout 30 fido2-assert -G -p -i /tmp/assert_param /dev/hidraw0 |
	timeout 10 fido2-assert -V -p /tmp/pub.pem es256 || fail 17 "fido2-assert -G | fido2-assert -V"
echo "vmtest: assertion verified"

# OpenSSH finds the key by enumerating USB hidraw devices, as it would a
# hardware key, then signs and verifies a message with it.
export SSH_SK_HELPER=/bin/ssh-sk-helper
echo hello > /tmp/msg
for t in ecdsa-sk ed25519-sk; do
	timeout 30 ssh-keygen -q -t $t -N '' -f /tmp/id_$t </dev/null || fail 19 "ssh-keygen -t $t"
	timeout 30 ssh-keygen -q -Y sign -n file -f /tmp/id_$t /tmp/msg </dev/null || fail 20 "ssh-keygen -Y sign ($t)"
	echo "vmtest@vkey $(cat /tmp/id_$t.pub)" > /tmp/allowed
	timeout 10 ssh-keygen -Y verify -f /tmp/allowed -I vmtest@vkey -n file -s /tmp/msg.sig < /tmp/msg || fail 21 "ssh-keygen -Y verify ($t)"
	rm -f /tmp/msg.sig
	echo "vmtest: ssh $t signature verified"
done

stopkey "after clients opened and closed /dev/hidraw0"

# A client that still holds /dev/hidraw0 open must not delay the stop.
startkey
exec 3<"$dev"
stopkey "a client holds /dev/hidraw0 open"
exec 3<&-

startkey
stopkey "idle, never opened"
echo "--- vkey stderr:"; cat /tmp/vkey.err
`

// vmStopBoundMS bounds the time from SIGTERM to the exit of `vkey run` on
// uhid, in the guest (TCG, so slower than real hardware). Measured: 10-40 ms
// idle, after clients, and with a client holding the hidraw node open;
// UHIDPort.Close's 2 s wait for its reader must never be what ends a stop.
const vmStopBoundMS = 500

// runVMKey boots a guest that runs vmScript with vkeyArgs added to `vkey run`.
func runVMKey(t *testing.T, tpm bool, vkeyArgs string) {
	t.Helper()
	vmtest.Require(t)
	var tools []string
	for _, name := range []string{"fido2-token", "fido2-cred", "fido2-assert"} {
		p, err := exec.LookPath(name)
		if err != nil {
			t.Skipf("skipping the VM test: %s not found (install fido2-tools)", name)
		}
		tools = append(tools, p)
	}
	for _, p := range []string{"/usr/bin/ssh-keygen", "/usr/lib/openssh/ssh-sk-helper"} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("skipping the VM test: %s not found (install openssh-client)", p)
		}
		tools = append(tools, p)
	}
	if tpm {
		if _, err := exec.LookPath("swtpm"); err != nil {
			t.Skip("skipping the VM test: swtpm not found (install swtpm)")
		}
	}
	start := time.Now()
	bin := vmBinary(t)
	buildTime := time.Since(start)

	// Typically 5 s for the guest; generous for a host shared with other
	// builds (TCG slows down in proportion).
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	start = time.Now()
	k := vmtest.TestKernel(t, ctx)
	kernelTime := time.Since(start)

	random := func(n int) string {
		b := make([]byte, n)
		_, _ = rand.Read(b)
		return base64.StdEncoding.EncodeToString(b)
	}
	var mods []string
	for _, m := range k.Modules {
		mods = append(mods, "/lib/modules/"+filepath.Base(m))
	}
	initrd := filepath.Join(t.TempDir(), "initramfs.cpio.gz")
	t0 := time.Now()
	err := vmtest.Initramfs(ctx, initrd, vmtest.InitramfsSpec{
		Init:     vmtest.InitScript(strings.NewReplacer("VKEY_ARGS", vkeyArgs, "STOP_BOUND_MS", strconv.Itoa(vmStopBoundMS)).Replace(vmScript), mods...),
		Modules:  k.Modules,
		Binaries: map[string]string{"bin/vkey": bin},
		Tools:    tools,
		Files: map[string][]byte{
			// fido2-cred -M input: client data hash, rp id, user name, user id.
			"etc/vkey/cred_param": []byte(random(32) + "\nexample.org\nalice\n" + random(16) + "\n"),
			"etc/vkey/assert_cdh": []byte(random(32) + "\n"),
			// ssh-keygen wants to know who runs it.
			"etc/passwd": []byte("root:x:0:0:root:/root:/bin/sh\n"),
			"etc/group":  []byte("root:x:0:\n"),
		},
	})
	vmtest.Skip(t, err)
	initrdTime := time.Since(t0)

	res, err := vmtest.Run(ctx, vmtest.RunOptions{Kernel: k.Vmlinux, Initrd: initrd, TPM: tpm})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kernel %s (%v), build %v, initramfs %v, guest %v", k.Release,
		kernelTime.Round(time.Millisecond), buildTime.Round(time.Millisecond),
		initrdTime.Round(time.Millisecond), res.Elapsed.Round(time.Millisecond))
	if res.ExitCode != 0 {
		t.Fatalf("guest failed with exit code %d:\n%s", res.ExitCode, res.Console)
	}
	for _, want := range []string{"vmtest: registered credential", "vmtest: assertion verified", "vmtest: ssh ecdsa-sk signature verified", "vmtest: ssh ed25519-sk signature verified",
		"vmtest: stop time (after clients", "vmtest: stop time (a client holds", "vmtest: stop time (idle"} {
		if !strings.Contains(res.Console, want) {
			t.Fatalf("guest console lacks %q:\n%s", want, res.Console)
		}
	}
	t.Logf("guest console:\n%s", res.Console)
}

// TestVMHidraw: `vkey run --transport uhid` in the guest; fido2-token lists
// and queries it, fido2-cred and fido2-assert register and authenticate
// through /dev/hidraw0, and the device disappears when vkey stops.
func TestVMHidraw(t *testing.T) {
	vmtest.Require(t) // before Record: without VKEY_VM=1 the test has nothing to report
	clientsummary.Record(t, "libfido2 tools and OpenSSH, uhid in the VM",
		"fido2-token -L/-I, fido2-cred and fido2-assert verified, ssh-keygen ecdsa-sk and ed25519-sk sign + verify, device gone when vkey stops")
	runVMKey(t, false, "")
}

// TestVMTPM: the same with swtpm attached and `--keys tpm`, so the
// credential's key is made and used by the guest kernel's TPM (/dev/tpmrm0).
func TestVMTPM(t *testing.T) {
	vmtest.Require(t) // before Record: without VKEY_VM=1 the test has nothing to report
	clientsummary.Record(t, "libfido2 tools and OpenSSH, uhid in the VM, keys in the guest's TPM", "the same as TestVMHidraw with --keys tpm")
	runVMKey(t, true, "--keys tpm --tpm /dev/tpmrm0")
}
