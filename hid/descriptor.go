package hid

// FIDOUsagePage is the HID usage page of FIDO authenticators (CTAP 2.1
// section 11.2.8.1).
const FIDOUsagePage = 0xF1D0

// HasFIDOUsagePage reports whether a HID report descriptor declares the
// FIDO usage page in a Usage Page item. It walks the items (HID 1.11
// section 6.2.2.2: short items are a prefix byte, bSize 0, 1, 2 or 4 data
// bytes; long items 0xFE, bDataSize, bLongItemTag, data), so the bytes of
// the page inside another item's data do not count.
func HasFIDOUsagePage(desc []byte) bool {
	for i := 0; i < len(desc); {
		prefix := desc[i]
		if prefix == 0xFE { // long item
			if i+1 >= len(desc) {
				return false
			}
			i += 3 + int(desc[i+1])
			continue
		}
		size := int(prefix & 0x03)
		if size == 3 {
			size = 4
		}
		if i+1+size > len(desc) {
			return false
		}
		// Usage Page: global item (bType 1), bTag 0.
		if prefix&0xFC == 0x04 {
			var v uint32
			for j := size - 1; j >= 0; j-- {
				v = v<<8 | uint32(desc[i+1+j])
			}
			if v == FIDOUsagePage {
				return true
			}
		}
		i += 1 + size
	}
	return false
}
