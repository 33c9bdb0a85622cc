package control

import (
	"context"
	"encoding/binary"
	"sync"

	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/hid"
)

// eventHandler reports registrations, assertions and resets as events.
type eventHandler struct {
	hid.Handler
	h *Hub

	mu     sync.Mutex
	lastRP string // of the last getAssertion, for getNextAssertion
}

// WrapHandler returns next reporting successful makeCredential and U2F
// registrations (credentialAdded), getAssertion, getNextAssertion and U2F
// authentications (credentialAsserted) and reset (reset) commands as
// events. It decodes nothing while nobody listens.
func (h *Hub) WrapHandler(next hid.Handler) hid.Handler { return &eventHandler{Handler: next, h: h} }

// withChannel names the request's CTAPHID channel for ctap2, which binds
// a U2F touch to it.
func withChannel(ctx context.Context) context.Context {
	if cid, ok := hid.Channel(ctx); ok {
		return ctap2.WithChannel(ctx, cid)
	}
	return ctx
}

// CancelChannel implements hid.ChannelCanceler for the wrapped handler.
func (e *eventHandler) CancelChannel(cid uint32) {
	if c, ok := e.Handler.(hid.ChannelCanceler); ok {
		c.CancelChannel(cid)
	}
}

// HandleCBOR implements hid.Handler.
func (e *eventHandler) HandleCBOR(ctx context.Context, msg []byte) []byte {
	resp := e.Handler.HandleCBOR(withChannel(ctx), msg)
	if len(msg) == 0 || len(resp) == 0 || ctap2.Status(resp[0]) != ctap2.StatusOK || !e.h.Active() {
		return resp
	}
	switch msg[0] {
	case ctap2.CmdMakeCredential:
		e.registered(msg[1:], resp[1:])
	case ctap2.CmdGetAssertion:
		var req struct {
			RPID string `cbor:"1,keyasint"`
		}
		_ = ctap2.Unmarshal(msg[1:], &req)
		e.mu.Lock()
		e.lastRP = req.RPID
		e.mu.Unlock()
		e.asserted(req.RPID, resp[1:])
	case ctap2.CmdGetNextAssertion:
		e.mu.Lock()
		rp := e.lastRP
		e.mu.Unlock()
		e.asserted(rp, resp[1:])
	case ctap2.CmdReset:
		e.h.Emit(Event{Type: EventReset, Source: "ctap"})
	}
	return resp
}

func (e *eventHandler) registered(reqBody, respBody []byte) {
	var req struct {
		RP      *ctap2.RPEntity   `cbor:"2,keyasint"`
		User    *ctap2.UserEntity `cbor:"3,keyasint"`
		Options map[string]bool   `cbor:"7,keyasint"`
	}
	var resp struct {
		AuthData []byte `cbor:"2,keyasint"`
	}
	if ctap2.Unmarshal(reqBody, &req) != nil || ctap2.Unmarshal(respBody, &resp) != nil || req.RP == nil {
		return
	}
	ad := resp.AuthData
	if len(ad) < 55 {
		return
	}
	n := int(binary.BigEndian.Uint16(ad[53:55]))
	if len(ad) < 55+n {
		return
	}
	count := binary.BigEndian.Uint32(ad[33:37])
	rk := req.Options["rk"]
	ev := Event{Type: EventCredentialAdded, Source: "ctap", CredentialID: b64(ad[55 : 55+n]), RPID: req.RP.ID,
		Discoverable: &rk, SignCount: &count}
	if req.User != nil {
		ev.UserName = req.User.Name
	}
	e.h.Emit(ev)
}

func (e *eventHandler) asserted(rpID string, respBody []byte) {
	var resp struct {
		Credential ctap2.CredentialDescriptor `cbor:"1,keyasint"`
		AuthData   []byte                     `cbor:"2,keyasint"`
	}
	if ctap2.Unmarshal(respBody, &resp) != nil || len(resp.AuthData) < 37 {
		return
	}
	flags := resp.AuthData[32]
	count := binary.BigEndian.Uint32(resp.AuthData[33:37])
	up, uv := flags&0x01 != 0, flags&0x04 != 0
	e.h.Emit(Event{Type: EventCredentialAsserted, Source: "ctap", CredentialID: b64(resp.Credential.ID), RPID: rpID,
		SignCount: &count, UserPresent: &up, UserVerified: &uv})
}

// HandleMSG implements hid.Handler.
func (e *eventHandler) HandleMSG(ctx context.Context, apdu []byte) []byte {
	resp := e.Handler.HandleMSG(withChannel(ctx), apdu)
	n := len(resp) - 2
	if n < 0 || resp[n] != 0x90 || resp[n+1] != 0x00 || !e.h.Active() {
		return resp
	}
	_, ins, _, data, ok := ctap2.ParseAPDU(apdu)
	if !ok || len(data) < 64 {
		return resp
	}
	appIDHash := b64(data[32:64]) // U2F names the RP by the hash of its application ID
	switch ins {
	case ctap2.U2FRegister:
		// 0x05 | public key (65) | key handle length | key handle | ...
		body := resp[:n]
		if len(body) < 67 || len(body) < 67+int(body[66]) {
			return resp
		}
		rk, count := false, uint32(0)
		e.h.Emit(Event{Type: EventCredentialAdded, Source: "ctap", CredentialID: b64(body[67 : 67+int(body[66])]),
			RPIDHash: appIDHash, Discoverable: &rk, SignCount: &count})
	case ctap2.U2FAuthenticate:
		// Request: challenge (32) | application (32) | handle length |
		// handle. Response: flags | counter (4) | signature.
		if len(data) < 65+int(data[64]) || n < 5 {
			return resp
		}
		count := binary.BigEndian.Uint32(resp[1:5])
		up, uv := resp[0]&0x01 != 0, false
		e.h.Emit(Event{Type: EventCredentialAsserted, Source: "ctap", CredentialID: b64(data[65 : 65+int(data[64])]),
			RPIDHash: appIDHash, SignCount: &count, UserPresent: &up, UserVerified: &uv})
	}
	return resp
}
