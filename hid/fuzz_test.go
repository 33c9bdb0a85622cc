package hid

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fuzzHandler echoes, blocks until cancelled, panics, answers big or takes
// its time, depending on the first byte of the request. Unlike fakeHandler
// it never waits for the test.
type fuzzHandler struct{}

func (fuzzHandler) HandleCBOR(ctx context.Context, msg []byte) []byte {
	switch msg[0] {
	case fakeBlockUP:
		UserPresenceNeeded(ctx)
		fallthrough
	case fakeBlock:
		<-ctx.Done()
		return []byte{keepaliveCancel}
	case fakePanic:
		panic("fuzz handler panic")
	case fakeBig:
		return make([]byte, 3000)
	case fakeHuge:
		return make([]byte, MaxFramedSize+1)
	case fakeIgnore: // slow, and deaf to cancellation
		time.Sleep(300 * time.Millisecond)
		return []byte{0}
	}
	return append([]byte{0}, msg...)
}

func (fuzzHandler) HandleMSG(_ context.Context, apdu []byte) []byte {
	return append(apdu, 0x90, 0x00)
}

// Fuzz script opcodes (the low two bits of an op byte; the rest is an
// argument).
const (
	opRaw   = 0 // the next 64 bytes (or fewer, at the end) are a report
	opSleep = 1 // advance fake time by arg*10ms
	opInit  = 2 // [chan, cmd, len (fuzzLen), first data byte]: initialization packet
	opCont  = 3 // [chan, seq]: continuation packet
)

// argInline, in the argument of opInit and opCont, hands the packet to the
// engine the way a Client on a Pipe does (on the script's goroutine; a
// request it completes runs on a goroutine of its own here, so that the
// script goes on), rather than writing it to the pipe.
const argInline = 1

// fuzzCID maps a script byte to one of the first channels a device
// allocates, the broadcast channel, or channel 0.
func fuzzCID(b byte) uint32 {
	switch b % 10 {
	case 8:
		return BroadcastCID
	case 9:
		return 0
	}
	return uint32(b%10) + 1
}

// fuzzLen maps a script byte to a message length: 0..127 as is, then by
// steps of 10 up to 1398 (past the default maximum of 1200).
func fuzzLen(b byte) int {
	if b < 128 {
		return int(b)
	}
	return 128 + int(b-128)*10
}

// lenByte is the inverse of fuzzLen (rounded down).
func lenByte(n int) byte {
	if n < 128 {
		return byte(n)
	}
	return byte(128 + (n-128)/10)
}

// runScript plays a fuzz script against a device. It fails if the device
// writes a malformed report or if Serve does not return once cancelled (a
// goroutine left blocked fails synctest.Test).
func runScript(t *testing.T, script []byte) { playScript(t, script) }

// playScript is runScript; it returns how many initialization packets of
// each command the device sent.
func playScript(t *testing.T, script []byte) map[byte]int {
	sent := map[byte]int{}
	// A hang that synctest cannot see (a goroutine blocked outside the
	// bubble's channels and timers) becomes a crash the fuzzer records.
	// This bounds the run; it measures nothing.
	watchdog := time.AfterFunc(time.Minute, func() {
		buf := make([]byte, 1<<20)
		panic(fmt.Sprintf("script %x hung:\n%s", script, buf[:runtime.Stack(buf, true)]))
	})
	defer watchdog.Stop()
	synctest.Test(t, func(t *testing.T) {
		host, dev := Pipe()
		d := NewDevice(fuzzHandler{}, DeviceConfig{Wink: func() {}})
		ctx, cancel := context.WithCancel(context.Background())
		served := make(chan error, 1)
		go func() { served <- d.Serve(ctx, dev) }()
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				r, err := host.ReadReport()
				if err != nil {
					return
				}
				if p, ok := checkDeviceReport(t, r); ok && p.init {
					sent[p.cmd]++
				}
			}
		})

		for i := 0; i < len(script); {
			op, arg := script[i]&3, script[i]>>2
			i++
			take := func(n int) []byte {
				b := make([]byte, n)
				i += copy(b, script[min(i, len(script)):])
				return b
			}
			var rep []byte
			switch op {
			case opRaw:
				n := min(ReportSize, len(script)-i)
				rep = script[i : i+n]
				i += n
			case opSleep:
				time.Sleep(time.Duration(arg) * 10 * time.Millisecond)
				continue
			case opInit:
				a := take(4)
				rep = initPacket(fuzzCID(a[0]), a[1], fuzzLen(a[2]), []byte{a[3], 1, 2, 3, 4, 5, 6, 7})
			case opCont:
				a := take(2)
				rep = contPacket(fuzzCID(a[0]), a[1], []byte{1, 2, 3})
			}
			if op != opRaw && arg&argInline != 0 {
				req, ok, err := host.(*pipeEnd).deliver([][]byte{rep})
				if req.tx != nil {
					wg.Go(req.run)
				}
				if err != nil {
					t.Fatalf("deliver: %v", err)
				}
				if ok { // else Serve has not started yet: write it
					continue
				}
			}
			if err := host.WriteReport(rep); err != nil {
				t.Fatalf("write: %v", err)
			}
		}
		time.Sleep(time.Second) // let timeouts and keepalives happen
		cancel()
		if err := <-served; !errors.Is(err, context.Canceled) {
			t.Errorf("Serve returned %v, want context.Canceled", err)
		}
		_ = host.Close()
		wg.Wait()
	})
	return sent
}

// checkDeviceReport checks what a device may send: only initialization
// packets of device-to-host commands with a length the framing can carry,
// or continuation packets.
func checkDeviceReport(t *testing.T, r []byte) (packet, bool) {
	p, ok := parsePacket(r)
	if !ok || len(r) != ReportSize {
		t.Errorf("device wrote a %d-byte report", len(r))
		return p, false
	}
	if !p.init {
		return p, true
	}
	switch p.cmd {
	case CmdPing, CmdMsg, CmdLock, CmdInit, CmdWink, CmdCBOR, CmdKeepalive, CmdError:
	default:
		t.Errorf("device sent command 0x%02x", p.cmd)
	}
	if p.bcnt > MaxFramedSize {
		t.Errorf("device sent a %d-byte message", p.bcnt)
	}
	return p, true
}

// script helpers for the seed corpus.
func sInit(cid byte, cmd byte, n int, d0 byte) []byte {
	return []byte{opInit, cid, 0x80 | cmd, lenByte(n), d0}
}
func sCont(cid byte, seq byte) []byte { return []byte{opCont, cid, seq} }
func sSleep(tens byte) []byte         { return []byte{opSleep | tens<<2} }

func cat(parts ...[]byte) []byte {
	var s []byte
	for _, p := range parts {
		s = append(s, p...)
	}
	return s
}

const bc = 8 // fuzzCID(8) is the broadcast channel; 0 is channel 1

// TestFuzzScripts checks that the script language reaches deep states: a
// channel is allocated, requests are answered, handlers block and are
// cancelled with keepalives meanwhile.
func TestFuzzScripts(t *testing.T) {
	sent := playScript(t, cat(sInit(bc, CmdInit, 8, 0), sInit(0, CmdPing, 200, 1), sCont(0, 0), sCont(0, 1), sCont(0, 2)))
	if sent[CmdInit] != 1 || sent[CmdPing] != 1 || sent[CmdError] != 0 {
		t.Errorf("INIT + PING script: device sent %v", sent)
	}
	sent = playScript(t, cat(sInit(bc, CmdInit, 8, 0), sInit(0, CmdCBOR, 5, fakeBlock), sSleep(25), sInit(0, CmdCancel, 0, 0)))
	if sent[CmdCBOR] != 1 || sent[CmdKeepalive] != 2 {
		t.Errorf("blocking CBOR + CANCEL script: device sent %v", sent)
	}
	// Inline: a blocking request sends no keepalives, and CANCEL (written
	// to the pipe) still ends it.
	inline := byte(opInit | argInline<<2)
	sent = playScript(t, cat(sInit(bc, CmdInit, 8, 0), sSleep(1), []byte{inline, 0, 0x80 | CmdCBOR, 5, fakeBlock}, sSleep(25),
		sInit(0, CmdCancel, 0, 0), sSleep(1), []byte{inline, 0, 0x80 | CmdPing, 100, 1}, []byte{opCont | argInline<<2, 0, 0}))
	if sent[CmdCBOR] != 1 || sent[CmdKeepalive] != 0 || sent[CmdPing] != 1 || sent[CmdError] != 0 {
		t.Errorf("inline script: device sent %v", sent)
	}
	sent = playScript(t, cat(sInit(bc, CmdInit, 8, 0), sInit(0, CmdLock, 1, 3), sInit(bc, CmdInit, 8, 0), sInit(1, CmdPing, 5, 0)))
	if sent[CmdLock] != 1 || sent[CmdError] != 1 {
		t.Errorf("LOCK script: device sent %v", sent)
	}
}

func FuzzDevice(f *testing.F) {
	f.Add([]byte{})
	f.Add(cat(sInit(bc, CmdInit, 8, 0), sInit(0, CmdPing, 5, 1)))
	f.Add(cat(sInit(bc, CmdInit, 8, 0), sInit(0, CmdPing, 200, 1), sCont(0, 0), sCont(0, 1), sCont(0, 2), sCont(0, 3)))
	f.Add(cat(sInit(bc, CmdInit, 8, 0), sInit(0, CmdCBOR, 5, fakeBlock), sSleep(30), sInit(0, CmdCancel, 0, 0)))
	f.Add(cat(sInit(bc, CmdInit, 8, 0), sInit(bc, CmdInit, 8, 0), sInit(0, CmdCBOR, 5, fakeBlockUP),
		sInit(1, CmdPing, 5, 0), sInit(0, CmdInit, 8, 0), sInit(0, CmdCBOR, 5, fakeBig)))
	f.Add(cat(sInit(bc, CmdInit, 8, 0), sInit(0, CmdCBOR, 100, 4), sSleep(60), sCont(0, 0)))
	f.Add(cat(sInit(bc, CmdInit, 8, 0), sInit(0, CmdLock, 1, 3), sInit(bc, CmdInit, 8, 0), sInit(1, CmdPing, 5, 0), sSleep(63)))
	f.Add(cat(sInit(bc, CmdInit, 8, 0), sInit(0, CmdCBOR, 5, fakePanic), sInit(0, CmdCBOR, 5, fakeHuge), sInit(0, CmdMsg, 10, 0)))
	f.Add(cat(sInit(bc, CmdInit, 8, 0), sInit(0, CmdCBOR, 5, fakeIgnore), sInit(0, CmdCancel, 0, 0), sInit(0, CmdInit, 8, 0)))
	f.Add(cat([]byte{opRaw}, initPacket(BroadcastCID, CmdInit, 8, nil), []byte{opRaw, 0, 0, 0, 1, 0x81}))
	inline := []byte{opInit | argInline<<2}
	f.Add(cat(sInit(bc, CmdInit, 8, 0), sSleep(1), inline, []byte{0, 0x80 | CmdCBOR, 5, fakeBlock}, sSleep(30), sInit(0, CmdCancel, 0, 0),
		sSleep(1), inline, []byte{0, 0x80 | CmdPing, 100, 1}, []byte{opCont | argInline<<2, 0, 0}, sInit(0, CmdPing, 5, 0)))
	f.Fuzz(runScript)
}
