package vmtest

import (
	"fmt"
	"path/filepath"
	"strings"
)

// HostRootInit returns an /init (see InitScript) for a guest that runs the
// host's own programs, such as web browsers, which are too big for an
// initramfs: it loads the kernel's HID modules and host-root modules (guest
// paths under /lib/modules, see KernelFiles), mounts the host's / (shared
// with RunOptions.HostRoot) read-only with a tmpfs overlay on top, so the
// guest can write anywhere without touching the host, mounts the read-write
// share (RunOptions.Share) at /vkeyshare, brings up the loopback interface,
// and runs script (a path inside that root) with bash, chrooted there with
// /proc, /sys, /dev, /dev/pts, /dev/shm, /tmp and /run of its own. The
// guest's exit status is the script's.
func HostRootInit(script string, k *KernelFiles) string {
	var mods []string
	for _, m := range append(append([]string{}, k.HostRootModules...), k.Modules...) {
		mods = append(mods, "/lib/modules/"+filepath.Base(m))
	}
	body := fmt.Sprintf(`set -e
ip link set lo up
mkdir -p /host /ovl /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 hostroot /host
mount -t tmpfs -o size=1536m tmpfs /ovl
mkdir -p /ovl/upper /ovl/work
mount -t overlay overlay -o lowerdir=/host,upperdir=/ovl/upper,workdir=/ovl/work /newroot
mkdir -p /newroot/vkeyshare
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 share /newroot/vkeyshare
mount -t proc proc /newroot/proc
mount -t sysfs sysfs /newroot/sys
mount -o bind /dev /newroot/dev
mkdir -p /newroot/dev/pts /newroot/dev/shm
mount -t devpts devpts /newroot/dev/pts
for d in dev/shm tmp run; do mount -t tmpfs tmpfs /newroot/$d; done
chmod 1777 /newroot/tmp /newroot/dev/shm
set +e
chroot /newroot /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME=/root LANG=C.UTF-8 /bin/bash %s`, shellQuote(script))
	return InitScript(body, mods...)
}

// shellQuote quotes s for sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
