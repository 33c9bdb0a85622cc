//go:build linux

package hid

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// FIDODevice is a hidraw node of a FIDO security key.
type FIDODevice struct {
	// Path is the node to Dial: /dev/hidrawN.
	Path string `json:"path"`
	// Name is the kernel's HID_NAME, when known.
	Name string `json:"name"`
}

// FIDODevices lists the hidraw nodes whose report descriptor declares the
// FIDO usage page 0xF1D0 (CTAP 2.1 section 11.2.8.1), as platforms find
// security keys.
func FIDODevices() []FIDODevice { return fidoDevices("/sys/class/hidraw", "/dev") }

// fidoDevices is FIDODevices over a sysfs class folder and a dev folder.
func fidoDevices(class, dev string) []FIDODevice {
	nodes, _ := filepath.Glob(filepath.Join(class, "hidraw*"))
	sort.Strings(nodes)
	var out []FIDODevice
	for _, n := range nodes {
		desc, err := os.ReadFile(filepath.Join(n, "device", "report_descriptor"))
		if err != nil || !HasFIDOUsagePage(desc) {
			continue
		}
		d := FIDODevice{Path: filepath.Join(dev, filepath.Base(n))}
		if ue, err := os.ReadFile(filepath.Join(n, "device", "uevent")); err == nil {
			for _, l := range strings.Split(string(ue), "\n") {
				if v, ok := strings.CutPrefix(l, "HID_NAME="); ok {
					d.Name = v
				}
			}
		}
		out = append(out, d)
	}
	return out
}
