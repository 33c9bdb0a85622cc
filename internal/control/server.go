package control

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/keystore"
	"github.com/vkey-dev/vkey/presence"
)

// Config describes the running key the API controls.
type Config struct {
	// Name is the key's name (vkey run --name).
	Name string
	// Transport is the address a CTAP client dials: a hidraw or pty path,
	// or udp:HOST:PORT (GET /info reports it; the CLI's --device NAME uses it).
	Transport string
	// Authenticator is the key.
	Authenticator *ctap2.Authenticator
	// Presence is the key's presence broker.
	Presence *presence.Broker
	// UV is the key's built-in user verification, nil when it has none.
	UV *presence.Verifier
	// Hub carries the events (the same hub whose wrappers the key uses).
	Hub *Hub
	// Logger receives refused connections and server errors (default: discard).
	Logger *slog.Logger
}

// Server serves the control API. It is an http.Handler.
type Server struct {
	cfg     Config
	mux     *http.ServeMux
	started time.Time

	mu sync.Mutex
	// manual is the mode auto presence switches back to.
	manual presence.Mode
	// held is the previous mode while /usb0/touch/on holds the button.
	held presence.Mode
}

// maxBody bounds request bodies.
const maxBody = 1 << 20

// New returns the control API of the key cfg describes.
func New(cfg Config) *Server {
	if cfg.Hub == nil {
		cfg.Hub = NewHub()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), started: time.Now()}
	s.manual = presence.Touch
	if m := cfg.Presence.Mode(); m != presence.Auto {
		s.manual = m
	}
	m := s.mux
	m.HandleFunc("GET /{$}", s.root)
	m.HandleFunc("GET /info", s.info)
	m.HandleFunc("GET /presence", s.presenceState)
	m.HandleFunc("POST /presence/approve", s.approve)
	m.HandleFunc("POST /presence/deny", s.deny)
	m.HandleFunc("PUT /presence/auto", s.auto)
	m.HandleFunc("POST /power-cycle", s.powerCycle)
	m.HandleFunc("GET /attestation", s.attestation)
	m.HandleFunc("GET /uv", s.uvState)
	m.HandleFunc("PUT /uv", s.setUV)
	m.HandleFunc("GET /credentials", s.listCredentials)
	m.HandleFunc("POST /credentials", s.addCredential)
	m.HandleFunc("DELETE /credentials", s.removeAll)
	m.HandleFunc("GET /credentials/{id}", s.getCredential)
	m.HandleFunc("DELETE /credentials/{id}", s.removeCredential)
	m.HandleFunc("PATCH /credentials/{id}", s.setProperties)
	m.HandleFunc("GET /events", s.events)
	m.HandleFunc("GET /usb0/touch/{state}", s.usbTouch)
	m.HandleFunc("GET /usb0/power/{state}", s.usbPower)
	return s
}

// ServeHTTP implements http.Handler: it refuses other users and browser
// requests, then routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := peerAllowed(r.Context()); err != nil {
		s.cfg.Logger.Warn("control API: refused a connection", "err", err)
		writeError(w, http.StatusForbidden, err.Error())
		return
	}
	if err := notFromBrowser(r); err != nil {
		writeError(w, http.StatusForbidden, err.Error())
		return
	}
	s.mux.ServeHTTP(w, r)
}

// notFromBrowser refuses what a web page could send to a loopback port:
// requests naming a non-loopback host (DNS rebinding) or carrying the
// headers browsers add to cross-origin and sub-resource requests. curl, Go
// and Python clients send none of them.
func notFromBrowser(r *http.Request) error {
	if r.Header.Get("Origin") != "" {
		return errors.New("requests from web pages are refused (Origin header present)")
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "none" {
		return errors.New("requests from web pages are refused (Sec-Fetch-Site: " + site + ")")
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "" || host == "localhost" || host == "vkey" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("host %q refused: use 127.0.0.1, [::1] or localhost", r.Host)
}

// Serve answers on ln until ctx is done.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	// Every connection is identified as it is accepted; another user's is
	// refused at once (see guard). Slow or idle clients are timed out.
	ln = guard(ln, s.cfg.Logger)
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       30 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ConnContext:       connContext,
		ErrorLog:          slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelDebug),
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		case <-done:
		}
	}()
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// apiError is the body of every error answer.
type apiError struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, apiError{Error: msg})
}

// readJSON decodes the request body into v, refusing unknown fields.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "invalid JSON body: "+err.Error())
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		writeError(w, http.StatusBadRequest, "invalid JSON body: trailing data")
		return false
	}
	return true
}

// Info is the answer of GET /info (and GET /).
type Info struct {
	Name      string `json:"name"`
	Transport string `json:"transport"`
	PID       int    `json:"pid"`
	Presence  string `json:"presence"`
	// Pending is the presence request waiting for a touch, if any.
	Pending *Pending  `json:"pending"`
	Started time.Time `json:"started"`
}

// Pending describes a presence request waiting for an answer.
type Pending struct {
	Command  string `json:"command"`
	RPID     string `json:"rpId,omitempty"`
	UserName string `json:"userName,omitempty"`
}

func (s *Server) pending() *Pending {
	req, ok := s.cfg.Presence.Pending()
	if !ok {
		return nil
	}
	return &Pending{Command: req.Command, RPID: req.RPID, UserName: req.UserName}
}

func (s *Server) infoValue() Info {
	return Info{Name: s.cfg.Name, Transport: s.cfg.Transport, PID: os.Getpid(),
		Presence: string(s.cfg.Presence.Mode()), Pending: s.pending(), Started: s.started.UTC()}
}

func (s *Server) root(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.infoValue())
}
func (s *Server) info(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.infoValue())
}

// Attestation is the answer of GET /attestation.
type Attestation struct {
	// RootPEM is this installation's attestation CA certificate, PEM
	// encoded: what a relying party trusts to verify the key's packed
	// (x5c) and tpm attestation statements.
	RootPEM string `json:"rootCertificate"`
}

func (s *Server) attestation(w http.ResponseWriter, r *http.Request) {
	der, err := s.cfg.Authenticator.AttestationRoot()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, Attestation{RootPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))})
}

// PresenceState is the answer of GET /presence and of the presence commands.
type PresenceState struct {
	Mode    string   `json:"mode"`
	Pending *Pending `json:"pending"`
	// Answered says whether a pending request was answered (approve, deny).
	Answered *bool `json:"answered,omitempty"`
}

func (s *Server) presenceState(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, PresenceState{Mode: string(s.cfg.Presence.Mode()), Pending: s.pending()})
}

// ErrNothingPending is the message of 409 answers to approve and deny.
const ErrNothingPending = "no presence request is pending"

func (s *Server) answer(w http.ResponseWriter, approve bool) {
	p := s.pending()
	var ok bool
	if approve {
		ok = s.cfg.Presence.Approve()
	} else {
		ok = s.cfg.Presence.Deny()
	}
	if !ok {
		writeError(w, http.StatusConflict, ErrNothingPending)
		return
	}
	writeJSON(w, http.StatusOK, PresenceState{Mode: string(s.cfg.Presence.Mode()), Pending: p, Answered: &ok})
}

func (s *Server) approve(w http.ResponseWriter, r *http.Request) { s.answer(w, true) }
func (s *Server) deny(w http.ResponseWriter, r *http.Request)    { s.answer(w, false) }

func (s *Server) auto(w http.ResponseWriter, r *http.Request) {
	var body struct {
		On *bool `json:"on"`
	}
	if !readJSON(w, r, &body) {
		return
	}
	if body.On == nil {
		writeError(w, http.StatusBadRequest, `body must be {"on": true} or {"on": false}`)
		return
	}
	s.setAuto(*body.On)
	writeJSON(w, http.StatusOK, PresenceState{Mode: string(s.cfg.Presence.Mode()), Pending: s.pending()})
}

// setAuto switches automatic approval on (approving what is pending) or
// back to the manual mode the key had.
func (s *Server) setAuto(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.held = ""
	if on {
		if m := s.cfg.Presence.Mode(); m != presence.Auto {
			s.manual = m
		}
		s.cfg.Presence.SetMode(presence.Auto)
		s.cfg.Presence.Approve()
		return
	}
	s.cfg.Presence.SetMode(s.manual)
}

func (s *Server) powerCycle(w http.ResponseWriter, r *http.Request) {
	s.doPowerCycle()
	writeJSON(w, http.StatusOK, map[string]bool{"powerCycled": true})
}

func (s *Server) doPowerCycle() {
	s.cfg.Authenticator.PowerCycle()
	s.cfg.Hub.Emit(Event{Type: EventPowerCycled, Source: "control"})
}

// usbTouch serves GET /usb0/touch/on|off: holding the button approves
// what is pending and everything that comes until it is released.
func (s *Server) usbTouch(w http.ResponseWriter, r *http.Request) {
	switch r.PathValue("state") {
	case "on":
		s.mu.Lock()
		if m := s.cfg.Presence.Mode(); m != presence.Auto {
			s.held = m
		}
		s.cfg.Presence.SetMode(presence.Auto)
		s.mu.Unlock()
		s.cfg.Presence.Approve()
	case "off":
		s.mu.Lock()
		if s.held != "" {
			s.cfg.Presence.SetMode(s.held)
			s.held = ""
		}
		s.mu.Unlock()
	default:
		writeError(w, http.StatusNotFound, "want /usb0/touch/on or /usb0/touch/off")
		return
	}
	writeJSON(w, http.StatusOK, PresenceState{Mode: string(s.cfg.Presence.Mode()), Pending: s.pending()})
}

// usbPower serves GET /usb0/power/on|off. Power off refuses the pending
// request (the key went away); power on starts the key afresh: volatile
// state reset, the reset window open again. The transport stays up.
func (s *Server) usbPower(w http.ResponseWriter, r *http.Request) {
	switch r.PathValue("state") {
	case "off":
		if s.cfg.Presence.Deny() {
			// Let the refusal reach the waiting command before the power
			// cycle cancels it, or the command may see the cancel first
			// and answer KEEPALIVE_CANCEL instead of OPERATION_DENIED.
			// The broker forgets a request once its wait has returned.
			for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
				if _, ok := s.cfg.Presence.Pending(); !ok {
					break
				}
			}
		}
		s.doPowerCycle()
	case "on":
		s.doPowerCycle()
	default:
		writeError(w, http.StatusNotFound, "want /usb0/power/on or /usb0/power/off")
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"powerCycled": true})
}

// Credential is a credential in the WebDriver "Credential Parameters"
// shape (WebAuthn section 11.3): binary values are base64url.
type Credential struct {
	CredentialID         string  `json:"credentialId"`
	IsResidentCredential bool    `json:"isResidentCredential"`
	RPID                 string  `json:"rpId"`
	PrivateKey           string  `json:"privateKey,omitempty"`
	UserHandle           string  `json:"userHandle,omitempty"`
	UserName             string  `json:"userName,omitempty"`
	UserDisplayName      string  `json:"userDisplayName,omitempty"`
	SignCount            uint32  `json:"signCount"`
	LargeBlob            *string `json:"largeBlob,omitempty"`
	BackupEligibility    bool    `json:"backupEligibility"`
	BackupState          bool    `json:"backupState"`
	// Reported only:
	Algorithm int64  `json:"algorithm,omitempty"`
	PublicKey string `json:"publicKey,omitempty"`
	Provider  string `json:"provider,omitempty"`
}

func credentialJSON(v ctap2.VirtualCredential) Credential {
	c := Credential{
		CredentialID: b64(v.ID), IsResidentCredential: v.Discoverable, RPID: v.RPID,
		UserName: v.UserName, UserDisplayName: v.UserDisplayName, SignCount: v.SignCount,
		BackupEligibility: v.BackupEligible, BackupState: v.BackupState,
		Algorithm: int64(v.Algorithm), PublicKey: b64(v.PublicKey), Provider: v.Provider,
	}
	if v.PrivateKey != nil {
		c.PrivateKey = b64(v.PrivateKey)
	}
	if v.UserHandle != nil {
		c.UserHandle = b64(v.UserHandle)
	}
	if v.LargeBlob != nil {
		lb := b64(v.LargeBlob)
		c.LargeBlob = &lb
	}
	return c
}

// decodeB64 accepts base64url (WebDriver's encoding) or standard base64,
// padded or not.
func decodeB64(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	if b, err := base64.RawURLEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(s)
}

// addRequest is the body of POST /credentials.
type addRequest struct {
	CredentialID         string  `json:"credentialId"`
	IsResidentCredential bool    `json:"isResidentCredential"`
	RPID                 string  `json:"rpId"`
	PrivateKey           string  `json:"privateKey"`
	UserHandle           string  `json:"userHandle"`
	UserName             string  `json:"userName"`
	UserDisplayName      string  `json:"userDisplayName"`
	SignCount            uint32  `json:"signCount"`
	LargeBlob            *string `json:"largeBlob"`
	BackupEligibility    bool    `json:"backupEligibility"`
	BackupState          bool    `json:"backupState"`
}

func (s *Server) addCredential(w http.ResponseWriter, r *http.Request) {
	var req addRequest
	if !readJSON(w, r, &req) {
		return
	}
	v := ctap2.VirtualCredential{RPID: req.RPID, Discoverable: req.IsResidentCredential,
		UserName: req.UserName, UserDisplayName: req.UserDisplayName, SignCount: req.SignCount,
		BackupEligible: req.BackupEligibility, BackupState: req.BackupState}
	fields := []struct {
		name string
		in   string
		out  *[]byte
	}{{"credentialId", req.CredentialID, &v.ID}, {"privateKey", req.PrivateKey, &v.PrivateKey}, {"userHandle", req.UserHandle, &v.UserHandle}}
	for _, f := range fields {
		if f.in == "" {
			continue
		}
		b, err := decodeB64(f.in)
		if err != nil {
			writeError(w, http.StatusBadRequest, f.name+" is not base64url: "+err.Error())
			return
		}
		*f.out = b
	}
	if req.LargeBlob != nil {
		b, err := decodeB64(*req.LargeBlob)
		if err != nil {
			writeError(w, http.StatusBadRequest, "largeBlob is not base64url: "+err.Error())
			return
		}
		v.LargeBlob = append([]byte{}, b...)
	}
	// The credential is read back under the lock that added it: a
	// concurrent DELETE cannot turn a done add into a 500.
	got, err := s.cfg.Authenticator.AddVirtualCredential(v)
	switch {
	case errors.Is(err, ctap2.ErrCredentialExists):
		writeError(w, http.StatusConflict, err.Error())
		return
	case errors.Is(err, ctap2.ErrInvalidVirtualCredential):
		writeError(w, http.StatusBadRequest, err.Error())
		return
	case errors.Is(err, keystore.ErrFull):
		writeError(w, http.StatusInsufficientStorage, err.Error())
		return
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	rk := v.Discoverable
	count := v.SignCount
	s.cfg.Hub.Emit(Event{Type: EventCredentialAdded, Source: "control", CredentialID: b64(got.ID), RPID: v.RPID,
		UserName: v.UserName, Discoverable: &rk, SignCount: &count})
	writeJSON(w, http.StatusCreated, credentialJSON(got))
}

// NextCursorHeader is the response header of GET /credentials that holds
// the cursor of the next page; it is absent after the last page. The body
// stays a JSON array of credentials, as before paging existed.
const NextCursorHeader = "Vkey-Next-Cursor"

// listCredentials answers GET /credentials[?rpId=RP][&limit=N][&cursor=C]:
// with neither limit nor cursor, every credential (as before paging);
// otherwise one page of credentials (default ctap2.DefaultVirtualPage, at
// most ctap2.MaxVirtualPage), with the next page's cursor in NextCursorHeader
// and in a Link header (RFC 8288, rel="next"). The key's lock is not held
// while the page is read, so CTAP commands go on meanwhile.
func (s *Server) listCredentials(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	rp := q.Get("rpId")
	limit := ctap2.DefaultVirtualPage
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > ctap2.MaxVirtualPage {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit must be a number from 1 to %d", ctap2.MaxVirtualPage))
			return
		}
		limit = n
	}
	var cursor []byte
	if v := q.Get("cursor"); v != "" {
		b, err := decodeB64(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "cursor is not one this key gave: pass the "+NextCursorHeader+" header of the previous page")
			return
		}
		cursor = b
	}
	// Without limit and cursor the answer is the whole list, as before
	// paging existed: scripts written then keep seeing every credential.
	// It is read a page at a time, so the key's lock is still not held.
	whole := q.Get("limit") == "" && cursor == nil
	if whole {
		limit = ctap2.MaxVirtualPage
	}
	page, next, err := s.cfg.Authenticator.VirtualCredentialsPage(rp, cursor, limit)
	for whole && err == nil && next != nil {
		var more []ctap2.VirtualCredential
		more, next, err = s.cfg.Authenticator.VirtualCredentialsPage(rp, next, limit)
		page = append(page, more...)
	}
	if errors.Is(err, ctap2.ErrInvalidPage) {
		writeError(w, http.StatusBadRequest, "cursor is not one this key gave for this rpId: pass the "+NextCursorHeader+" header of the previous page")
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	out := make([]Credential, 0, len(page))
	for _, v := range page {
		out = append(out, credentialJSON(v))
	}
	if next != nil {
		c := b64(next)
		nq := url.Values{"limit": {strconv.Itoa(limit)}, "cursor": {c}}
		if rp != "" {
			nq.Set("rpId", rp)
		}
		w.Header().Set(NextCursorHeader, c)
		w.Header().Set("Link", "</credentials?"+nq.Encode()+`>; rel="next"`)
	}
	writeJSON(w, http.StatusOK, out)
}

// credentialID decodes the {id} path value; it writes the error itself.
func credentialID(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	id, err := decodeB64(r.PathValue("id"))
	if err != nil || len(id) == 0 {
		writeError(w, http.StatusBadRequest, "the credential ID in the path is not base64url")
		return nil, false
	}
	return id, true
}

func notFoundOr500(w http.ResponseWriter, err error) {
	if errors.Is(err, keystore.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no such credential")
		return
	}
	writeError(w, http.StatusInternalServerError, err.Error())
}

func (s *Server) getCredential(w http.ResponseWriter, r *http.Request) {
	if id, ok := credentialID(w, r); ok {
		s.writeCredential(w, id)
	}
}

// writeCredential answers with the credential id, or 404.
func (s *Server) writeCredential(w http.ResponseWriter, id []byte) {
	v, err := s.cfg.Authenticator.VirtualCredential(id)
	if err != nil {
		notFoundOr500(w, err)
		return
	}
	writeJSON(w, http.StatusOK, credentialJSON(v))
}

func (s *Server) removeCredential(w http.ResponseWriter, r *http.Request) {
	id, ok := credentialID(w, r)
	if !ok {
		return
	}
	if err := s.cfg.Authenticator.RemoveCredential(id); err != nil {
		notFoundOr500(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) removeAll(w http.ResponseWriter, r *http.Request) {
	n, err := s.cfg.Authenticator.RemoveAllCredentials()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"removed": n})
}

// propertiesRequest is the body of PATCH /credentials/{id} (WebDriver "Set
// Credential Properties" plus signCount).
type propertiesRequest struct {
	SignCount         *uint32 `json:"signCount"`
	BackupEligibility *bool   `json:"backupEligibility"`
	BackupState       *bool   `json:"backupState"`
}

func (s *Server) setProperties(w http.ResponseWriter, r *http.Request) {
	id, ok := credentialID(w, r)
	if !ok {
		return
	}
	var req propertiesRequest
	if !readJSON(w, r, &req) {
		return
	}
	err := s.cfg.Authenticator.SetCredentialProperties(id, req.SignCount, req.BackupEligibility, req.BackupState)
	if errors.Is(err, ctap2.ErrInvalidVirtualCredential) {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err != nil {
		notFoundOr500(w, err)
		return
	}
	s.writeCredential(w, id)
}

// events streams newline-delimited JSON events until the client leaves.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "streaming unsupported")
		return
	}
	ch, stop := s.cfg.Hub.Subscribe()
	defer stop()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	flusher.Flush()
	enc := json.NewEncoder(w)
	for {
		select {
		case <-r.Context().Done():
			return
		case e := <-ch:
			if err := enc.Encode(e); err != nil {
				return
			}
			flusher.Flush()
		}
	}
}
