package tpm

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/google/go-tpm/tpm2"
)

// tpmInfo describes the TPM for the AIK certificate's subject alternative
// name (WebAuthn section 8.3.1; TCG EK Credential Profile, section 3.1.2).
type tpmInfo struct {
	manufacturer string // "id:" + TPM_PT_MANUFACTURER as 8 hex digits
	model        string // TPM_PT_VENDOR_STRING_1..4
	version      string // "id:" + TPM_PT_FIRMWARE_VERSION_1 as 8 hex digits
}

// Info returns the TPM's manufacturer ("id:XXXXXXXX"), model (vendor string)
// and firmware version ("id:XXXXXXXX"), as read with TPM2_GetCapability.
func (tp *TPM) Info() (manufacturer, model, version string, err error) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	info, err := tp.readInfo()
	if err != nil {
		return "", "", "", err
	}
	return info.manufacturer, info.model, info.version, nil
}

// readInfo reads the fixed TPM properties once. Callers hold tp.mu.
func (tp *TPM) readInfo() (*tpmInfo, error) {
	if tp.info != nil {
		return tp.info, nil
	}
	t, err := tp.conn()
	if err != nil {
		return nil, err
	}
	props := map[tpm2.TPMPT]uint32{}
	first, last := tpm2.TPMPTManufacturer, tpm2.TPMPTFirmwareVersion1
	for p := first; p <= last; {
		rsp, err := tpm2.GetCapability{
			Capability:    tpm2.TPMCapTPMProperties,
			Property:      uint32(p),
			PropertyCount: uint32(last - p + 1),
		}.Execute(t)
		if err != nil {
			return nil, tp.wrap("read TPM properties", err)
		}
		list, err := rsp.CapabilityData.Data.TPMProperties()
		if err != nil {
			return nil, fmt.Errorf("%s: read TPM properties: %w", tp.desc, err)
		}
		next := p
		for _, tp := range list.TPMProperty {
			props[tp.Property] = tp.Value
			if tp.Property >= next {
				next = tp.Property + 1
			}
		}
		if !rsp.MoreData || next == p {
			break
		}
		p = next
	}
	var vendor []byte
	for p := tpm2.TPMPTVendorString1; p <= tpm2.TPMPTVendorString1+3; p++ {
		vendor = binary.BigEndian.AppendUint32(vendor, props[p])
	}
	tp.info = &tpmInfo{
		manufacturer: fmt.Sprintf("id:%08X", props[tpm2.TPMPTManufacturer]),
		model:        printable(vendor),
		version:      fmt.Sprintf("id:%08X", props[tpm2.TPMPTFirmwareVersion1]),
	}
	return tp.info, nil
}

// printable keeps the printable ASCII of a vendor string, without padding.
func printable(b []byte) string {
	var s strings.Builder
	for _, c := range b {
		if c >= 0x20 && c < 0x7f {
			s.WriteByte(c)
		}
	}
	return strings.TrimSpace(s.String())
}
