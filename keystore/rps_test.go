package keystore

import (
	"bytes"
	"testing"
)

// TestPrefixEnd: the key DiscoverableRPs seeks to after an RP's tag is
// past every key with that tag and before every larger tag.
func TestPrefixEnd(t *testing.T) {
	for _, tc := range []struct {
		prefix, want []byte
		ok           bool
	}{
		{[]byte{1, 2, 3}, []byte{1, 2, 4}, true},
		{[]byte{1, 0xff, 0xff}, []byte{2}, true},
		{[]byte{0xff, 0xff}, nil, false},
	} {
		got, ok := prefixEnd(tc.prefix)
		if ok != tc.ok || !bytes.Equal(got, tc.want) {
			t.Errorf("prefixEnd(%x) = %x, %v; want %x, %v", tc.prefix, got, ok, tc.want, tc.ok)
		}
		if ok && bytes.Compare(append(append([]byte{}, tc.prefix...), bytes.Repeat([]byte{0xff}, 40)...), got) >= 0 {
			t.Errorf("prefixEnd(%x) = %x is not past every key with the prefix", tc.prefix, got)
		}
	}
}
