package vkey

import (
	"context"
	"encoding/hex"
	"log/slog"
	"strings"

	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/hid"
	"github.com/vkey-dev/vkey/internal/escape"
)

// Handler returns a's CTAPHID handler: a with the CTAPHID channel of each
// request passed on to it (ctap2 binds a U2F touch to the channel that
// asked for it). Serve it with hid.NewDevice.
func Handler(a *ctap2.Authenticator) hid.Handler { return channelHandler{a} }

type channelHandler struct{ a *ctap2.Authenticator }

func withChannel(ctx context.Context) context.Context {
	if cid, ok := hid.Channel(ctx); ok {
		return ctap2.WithChannel(ctx, cid)
	}
	return ctx
}

// HandleCBOR implements hid.Handler.
func (h channelHandler) HandleCBOR(ctx context.Context, msg []byte) []byte {
	return h.a.HandleCBOR(withChannel(ctx), msg)
}

// HandleMSG implements hid.Handler.
func (h channelHandler) HandleMSG(ctx context.Context, apdu []byte) []byte {
	return h.a.HandleMSG(withChannel(ctx), apdu)
}

// CancelChannel implements hid.ChannelCanceler.
func (h channelHandler) CancelChannel(cid uint32) { h.a.CancelChannel(cid) }

// Keepalive is the ctap2.Observer that makes the CTAPHID device serving a
// request send KEEPALIVE(STATUS_UPNEEDED) while its command waits for the
// user (CTAP 2.1 section 11.2.9.1.6). Give it to ctap2.Options.Observer of
// any authenticator served with hid.NewDevice; New does.
var Keepalive ctap2.Observer = ctap2.ObserverFunc(func(ctx context.Context, e ctap2.Event) {
	if _, ok := e.(ctap2.PresenceRequested); ok {
		hid.UserPresenceNeeded(ctx)
	}
})

// LogObserver logs every event at debug level (`vkey run --verbose`);
// what comes from a request is escaped. A U2F credential's relying party
// is known only by the SHA-256 of its application ID (FIDO U2F Raw Message
// Formats, section 4.1), so its lines name it by app=, that hash's first 8
// bytes in hex, where CTAP2's lines have rp=.
func LogObserver(l *slog.Logger) ctap2.Observer {
	return ctap2.ObserverFunc(func(ctx context.Context, e ctap2.Event) {
		if !l.Enabled(ctx, slog.LevelDebug) {
			return
		}
		switch e := e.(type) {
		case ctap2.CredentialCreated:
			l.Debug("credential created", append([]any{relyingParty(e.RPID, e.RPIDHash, e.U2F), "discoverable", e.Discoverable, "u2f", e.U2F},
				extensionAttrs(e.Extensions, e.ExtensionOutputs)...)...)
		case ctap2.CredentialAsserted:
			l.Debug("credential asserted", append([]any{relyingParty(e.RPID, e.RPIDHash, e.U2F), "counter", e.SignCount, "up", e.UserPresent, "uv", e.UserVerified, "u2f", e.U2F},
				extensionAttrs(e.Extensions, e.ExtensionOutputs)...)...)
		case ctap2.CredentialDeleted:
			l.Debug("credential deleted", "rp", escape.Terminal(e.RPID))
		case ctap2.CredentialUpdated:
			l.Debug("credential updated", "rp", escape.Terminal(e.RPID))
		case ctap2.Reset:
			l.Debug("reset")
		case ctap2.PINSet:
			l.Debug("PIN set")
		case ctap2.PINChanged:
			l.Debug("PIN changed")
		case ctap2.PINBlocked:
			l.Debug("PIN blocked")
		case ctap2.PresenceRequested:
			l.Debug("presence requested", "command", escape.Terminal(e.Request.Command), "rp", escape.Terminal(e.Request.RPID))
		case ctap2.PresenceAnswered:
			l.Debug("presence answered", "command", escape.Terminal(e.Request.Command), "err", e.Err)
		case ctap2.PresenceTimedOut:
			l.Debug("presence timed out", "command", escape.Terminal(e.Request.Command))
		}
	})
}

// extensionAttrs are the log attributes naming the extensions a command
// acted on (ext=) and returned output for (ext_out=), comma-separated and
// left out when there are none. ctap2 names only extensions it implements,
// but the names are escaped like everything else a request chose.
func extensionAttrs(acted, out []string) []any {
	var attrs []any
	if len(acted) > 0 {
		attrs = append(attrs, slog.String("ext", escape.Terminal(strings.Join(acted, ","))))
	}
	if len(out) > 0 {
		attrs = append(attrs, slog.String("ext_out", escape.Terminal(strings.Join(out, ","))))
	}
	return attrs
}

// relyingParty is the log attribute naming an event's relying party: its
// RP ID, escaped, or for U2F, whose events carry no RP ID, the start of
// the application ID's hash (16 hex digits are enough to tell apart the
// few sites a key is used with).
func relyingParty(rpID string, rpIDHash [32]byte, u2f bool) slog.Attr {
	if u2f {
		return slog.String("app", hex.EncodeToString(rpIDHash[:8]))
	}
	return slog.String("rp", escape.Terminal(rpID))
}
