// Command uhidguest runs inside the vmtest guest (TestVMUHIDDevice): it
// creates a FIDO device with hid.OpenUHID, prints its hidraw node, and serves
// a fake authenticator through the CTAPHID engine that answers
// authenticatorGetInfo and refuses everything else. It stops on SIGTERM or
// SIGINT, destroying the device.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/vkey-dev/vkey/hid"
)

// getInfoResponse is CTAP2_OK followed by the CBOR map
// {1: ["FIDO_2_0"], 3: aaguid} (CTAP 2.1 section 6.4: versions and aaguid
// are the required members).
var getInfoResponse = append([]byte{
	0x00,       // CTAP2_OK
	0xA2,       // map(2)
	0x01, 0x81, // 1: array(1)
	0x68, 'F', 'I', 'D', 'O', '_', '2', '_', '0',
	0x03, 0x50, // 3: bytes(16)
}, []byte("vkey-vmtest-guid")...)

// fake is a handler knowing only authenticatorGetInfo (0x04).
type fake struct{}

func (fake) HandleCBOR(_ context.Context, msg []byte) []byte {
	if len(msg) > 0 && msg[0] == 0x04 {
		return append([]byte(nil), getInfoResponse...)
	}
	return []byte{0x01} // CTAP1_ERR_INVALID_COMMAND
}

func (fake) HandleMSG(context.Context, []byte) []byte {
	return []byte{0x6D, 0x00} // SW_INS_NOT_SUPPORTED
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "uhidguest:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	start := time.Now()
	p, err := hid.OpenUHID(hid.UHIDConfig{Name: "vkey vmtest", VendorID: 0x1209, ProductID: 0x0001, Serial: "vkey-vmtest"})
	if err != nil {
		return err
	}
	defer p.Close()
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	path, err := p.HidrawPath(wctx)
	cancel()
	if err != nil {
		return err
	}
	fmt.Printf("uhidguest: %s ready after %v\n", path, time.Since(start).Round(time.Millisecond))
	dev := hid.NewDevice(fake{}, hid.DeviceConfig{Capabilities: hid.CapabilityCBOR | hid.CapabilityNMSG})
	if err := dev.Serve(ctx, p); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
