package hid

import (
	"context"
	"testing"
	"time"
)

func TestUDPRoundTrip(t *testing.T) {
	p, err := ListenUDP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serve(t, newFake(), DeviceConfig{}, p)
	c, err := Dial(t.Context(), "udp:"+p.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	exercise(t, c)
	// A second host gets its own channel and the replies.
	c2, err := Dial(t.Context(), "udp:"+p.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if c2.Info().Channel == c.Info().Channel {
		t.Errorf("second host got channel %08x again", c.Info().Channel)
	}
	if got, err := c2.Ping(t.Context(), []byte("hi")); err != nil || string(got) != "hi" {
		t.Errorf("second host Ping = %q, %v", got, err)
	}
}

func TestUDPDialNoDevice(t *testing.T) {
	p, err := ListenUDP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := p.Addr().String()
	_ = p.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if c, err := Dial(ctx, "udp:"+addr); err == nil {
		c.Close()
		t.Fatal("Dial succeeded with nobody listening")
	}
}
