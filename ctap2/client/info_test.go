package client

import (
	"testing"

	"github.com/vkey-dev/vkey/ctap2"
)

// TestMinPINLength: an absent minPINLength means 4 (CTAP 2.1 section
// 6.4); a stated one is kept.
func TestMinPINLength(t *testing.T) {
	for _, c := range []struct {
		info *ctap2.GetInfoResponse
		want uint64
	}{
		{nil, 4},
		{&ctap2.GetInfoResponse{}, 4},
		{&ctap2.GetInfoResponse{MinPINLength: 6}, 6},
	} {
		if got := MinPINLength(c.info); got != c.want {
			t.Errorf("MinPINLength(%+v) = %d, want %d", c.info, got, c.want)
		}
	}
}
