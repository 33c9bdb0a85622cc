package client

import "github.com/vkey-dev/vkey/ctap2"

// DefaultMinPINLength is the minimum PIN length of a key whose getInfo
// omits minPINLength (CTAP 2.1 section 6.4, member 0x0D: "If absent,
// then the minimum PIN length is 4 code points").
const DefaultMinPINLength = 4

// MinPINLength is the minimum PIN length info states, or
// DefaultMinPINLength when it is absent (CTAP 2.1 section 6.4).
func MinPINLength(info *ctap2.GetInfoResponse) uint64 {
	if info == nil || info.MinPINLength == 0 {
		return DefaultMinPINLength
	}
	return info.MinPINLength
}
