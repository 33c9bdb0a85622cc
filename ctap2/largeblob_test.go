package ctap2_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"testing"

	"github.com/vkey-dev/vkey/ctap2"
)

// TestLargeBlobFragments writes a serialized array larger than one message
// and reads it back (CTAP 2.1 section 6.10), with and without a PIN.
func TestLargeBlobFragments(t *testing.T) {
	ctx := context.Background()
	k := newKey(t)
	entry, err := ctap2.SealLargeBlob(bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte("x"), 10))
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 2000)
	rand.Read(big)
	entry.Ciphertext = append(entry.Ciphertext, big...)
	arr, err := ctap2.EncodeLargeBlobArray([]ctap2.LargeBlobEntry{entry})
	if err != nil {
		t.Fatal(err)
	}
	if err := k.c.WriteLargeBlobArray(ctx, nil, arr); err != nil {
		t.Fatalf("write without PIN: %v", err)
	}
	got, err := k.c.LargeBlobArray(ctx)
	if err != nil || !bytes.Equal(got, arr) {
		t.Fatalf("read back %d bytes (%v), want %d", len(got), err, len(arr))
	}
	wantStatus(t, k.c.SetPIN(ctx, 2, "1234"), ctap2.StatusOK)
	err = k.c.WriteLargeBlobArray(ctx, nil, arr)
	wantStatus(t, err, ctap2.ErrPUATRequired)
	tok, err := k.c.PINToken(ctx, 2, "1234", ctap2.PermLargeBlobWrite, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := k.c.WriteLargeBlobArray(ctx, tok, arr); err != nil {
		t.Fatalf("write with a token: %v", err)
	}
	// A corrupted checksum is CTAP2_ERR_INTEGRITY_FAILURE.
	bad := bytes.Clone(arr)
	bad[len(bad)-1] ^= 1
	wantStatus(t, k.c.WriteLargeBlobArray(ctx, tok, bad), ctap2.ErrIntegrityFailure)
}
