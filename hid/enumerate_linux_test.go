//go:build linux

package hid

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestHasFIDOUsagePage: the FIDO page is found in a Usage Page item of any
// size, and not in another item's data nor a truncated descriptor.
func TestHasFIDOUsagePage(t *testing.T) {
	for _, c := range []struct {
		name string
		desc []byte
		want bool
	}{
		{"vkey's own descriptor", uhidReportDescriptor[:], true},
		{"2-byte usage page", []byte{0x06, 0xD0, 0xF1, 0x09, 0x01}, true},
		{"4-byte usage page", []byte{0x07, 0xD0, 0xF1, 0x00, 0x00}, true},
		{"keyboard", []byte{0x05, 0x01, 0x09, 0x06, 0xA1, 0x01, 0xC0}, false},
		{"the bytes inside a logical maximum", []byte{0x05, 0x01, 0x27, 0x06, 0xD0, 0xF1, 0x00}, false},
		{"the bytes inside a long item", []byte{0xFE, 0x03, 0x10, 0x06, 0xD0, 0xF1}, false},
		{"truncated", []byte{0x06, 0xD0}, false},
		{"empty", nil, false},
	} {
		if got := HasFIDOUsagePage(c.desc); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// TestFIDODevices lists a fake sysfs: only the node with the FIDO page,
// with its HID_NAME.
func TestFIDODevices(t *testing.T) {
	class := t.TempDir()
	node := func(name string, desc []byte, uevent string) {
		d := filepath.Join(class, name, "device")
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(d, "report_descriptor"), desc, 0o600)
		os.WriteFile(filepath.Join(d, "uevent"), []byte(uevent), 0o600)
	}
	node("hidraw0", []byte{0x05, 0x01, 0x09, 0x06, 0xA1, 0x01, 0xC0}, "HID_NAME=Keyboard\n")
	node("hidraw1", uhidReportDescriptor[:], "DRIVER=hid-generic\nHID_NAME=vkey\n")
	got := fidoDevices(class, "/dev")
	want := []FIDODevice{{Path: "/dev/hidraw1", Name: "vkey"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("devices %+v, want %+v", got, want)
	}
}
