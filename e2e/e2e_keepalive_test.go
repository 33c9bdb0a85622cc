package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/internal/keyproc"
)

// TestE2EKeepaliveWhileWaitingForTouch speaks raw CTAPHID over UDP to a key
// in touch mode: while the registration waits for `vkey touch`, the key
// sends CTAPHID_KEEPALIVE with STATUS_UPNEEDED (CTAP 2.1 section
// 11.2.9.2.1), and the touch completes the registration.
func TestE2EKeepaliveWhileWaitingForTouch(t *testing.T) {
	k := startKey(t, "--ephemeral", "--transport", "udp", "--udp-addr", "127.0.0.1:0", "--presence", "touch")
	conn, err := net.Dial("udp", strings.TrimPrefix(k.Where, "udp:"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	send := func(pkt []byte) {
		buf := make([]byte, 64)
		copy(buf, pkt)
		if _, err := conn.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	recv := func() []byte {
		buf := make([]byte, 64)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("reading from the key: %v", err)
		}
		return buf[:n]
	}
	// CTAPHID_INIT on the broadcast channel.
	nonce := make([]byte, 8)
	rand.Read(nonce)
	send(append([]byte{0xff, 0xff, 0xff, 0xff, 0x86, 0, 8}, nonce...))
	init := recv()
	if !bytes.Equal(init[7:15], nonce) {
		t.Fatalf("INIT answer %x does not echo the nonce", init)
	}
	cid := init[15:19]
	// CTAPHID_CBOR makeCredential, in an init and continuation packets.
	msg := append([]byte{ctap2.CmdMakeCredential}, mustMarshal(t, &ctap2.MakeCredentialRequest{
		ClientDataHash: make([]byte, 32), RP: &ctap2.RPEntity{ID: "example.com"},
		User: &ctap2.UserEntity{ID: []byte{1}, Name: "alice"}, PubKeyCredParams: esParams(t)})...)
	first := append(append([]byte{}, cid...), 0x90, byte(len(msg)>>8), byte(len(msg)))
	n := min(57, len(msg))
	send(append(first, msg[:n]...))
	for seq, rest := byte(0), msg[n:]; len(rest) > 0; seq++ {
		m := min(59, len(rest))
		send(append(append(append([]byte{}, cid...), seq), rest[:m]...))
		rest = rest[m:]
	}
	// Keepalives with STATUS_UPNEEDED until the touch.
	upNeeded := 0
	for upNeeded < 3 {
		p := recv()
		if !bytes.Equal(p[:4], cid) || p[4] != 0xbb {
			t.Fatalf("expected a KEEPALIVE while waiting for the touch, got %x", p[:8])
		}
		if p[7] == 2 {
			upNeeded++
		}
	}
	cmd := exec.Command(keyproc.Binary(t), "touch")
	cmd.Env = k.Env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("vkey touch: %v\n%s", err, out)
	}
	for {
		p := recv()
		if p[4] == 0xbb {
			continue
		}
		if p[4] != 0x90 || p[7] != 0 {
			t.Fatalf("after the touch: %x, want a CBOR answer with CTAP2_OK", p[:8])
		}
		if total := binary.BigEndian.Uint16(p[5:7]); total < 100 {
			t.Errorf("makeCredential answer of %d bytes", total)
		}
		return
	}
}

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := ctap2.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
